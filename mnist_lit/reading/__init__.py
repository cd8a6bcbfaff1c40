"""Reading pictures: files anyone may send, each digit brought to MNIST's 28x28 form, numbers cut
into digits and the decisions between their readings. numpy and Pillow only: no torch.

Try it: pytest tests/reading
"""
