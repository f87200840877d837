"""`officesec hash-password` and `officesec api-token`: credentials for the guard config.

hash-password makes the argon2id hash for a `[[users]]` entry (argon2-cffi's
defaults, m=64 MiB, t=3: above the minimum check-config demands).

The password is read without echo on a terminal (asked twice), or as the first
line of standard input in scripts; it never appears in argv or shell history.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import re
import secrets
import sys

from argon2 import PasswordHasher

MIN_LENGTH = 8
NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
TOKEN_PREFIX = "osk_"  # noqa: S105 - the marker web/auth.py looks for, not a secret


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


def api_token(args: argparse.Namespace) -> int:
    """`officesec api-token --user NAME --name LABEL`: a new token for a script.

    The token itself is printed once (give it to the script, e.g. in a 0600
    file); the config keeps only its SHA-256, in an `[[api_tokens]]` entry.
    Tokens carry 256 random bits, so a fast hash is as safe as argon2 here.
    """
    for key, value in (("--user", args.user), ("--name", args.name)):
        if not NAME.fullmatch(value):
            print(f"{key}: 1-64 characters of A-Z, a-z, 0-9 and . _ @ -", file=sys.stderr)
            return 1
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    print(f"token (shown once; the script sends 'Authorization: Bearer TOKEN'):\n{token}\n")
    print("add to the guard config:\n")
    print(f'[[api_tokens]]\nname = "{args.name}"\nuser = "{args.user}"\nsha256 = "{digest}"')
    return 0
