"""`officesec hash-password`: make the argon2 hash for a `[[users]]` entry.

The password is read without echo on a terminal (asked twice), or as the first
line of standard input in scripts; it never appears in argv or shell history.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from argon2 import PasswordHasher

MIN_LENGTH = 8


def main(_args: argparse.Namespace) -> int:
    """Print the hash on stdout; exit 1 on an empty, short or mismatched password."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_LENGTH:
        print(f"password: at least {MIN_LENGTH} characters, please", file=sys.stderr)
        return 1
    print(PasswordHasher().hash(password))
    return 0
