"""officesec: silent panic alarm and door release for caseworker offices.

Nothing hardware- or network-related is imported here, so that the guard
station and the tools can import the package on any machine.
"""

__version__ = "0.1.0"
