"""Imported first by every entry point, before anything heavy: pauses the garbage collector while the script's
imports run; mnist_lit.cli.run turns it back on. Nothing else imports this module.

Try it: time python predict.py image=<one picture>
"""

import gc

gc.disable()
