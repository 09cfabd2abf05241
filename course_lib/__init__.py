"""course_lib: the tested reference implementations behind the Foundations of Deep Learning course.

One module per topic (see ``DESIGN.md``); notebooks import from here so that every formula
they show is the one the test suite checks against an independent oracle.
"""

__version__ = "0.1.0"
