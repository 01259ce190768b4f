"""The KALE domain core: constants, proof of work, reward maths and contract encodings.

Pure functions and values only: nothing here performs I/O.
"""
