#!/usr/bin/env python3
"""The awkward object keys every client group exercises, and what s3s-fs cannot do with them.

`python3 keys.py` prints them as JSON: [[name, key, s3s_fs_limitation_or_null], ...] (used by node/test.mjs).
"""

import json

# s3s-fs 0.14.1 stores metadata in a file named .bucket-<b64 bucket>.object-<b64 key>.internal.json,
# so a key longer than about 160 bytes exceeds NAME_MAX (255) and PutObject answers 500 InternalError.
S3SFS_MAX_KEY = 150


def awkward_keys():
    """(name, key, s3s_fs_limitation_or_None) for the awkward-key tests."""
    seg = "long-" + "k" * 94 + "/"  # 100 bytes
    key1000 = seg * 9 + "L" * 100  # 1000 bytes, components stay < 255
    assert len(key1000.encode()) == 1000
    key150 = "long150-" + "q" * 142
    assert len(key150.encode()) == S3SFS_MAX_KEY
    return [
        ("space", "dir with space/file name.txt", None),
        ("plus", "a+b+c.txt", None),
        ("equals", "k=v=w", None),
        ("ampersand", "this&that", None),
        ("question", "what?x=1", None),
        ("hash", "issue#42", None),
        ("percent", "100%25 done%", None),
        ("tilde", "~user/~file~", None),
        ("e-acute", "caf\u00e9/r\u00e9sum\u00e9.txt", None),
        ("nihon", "\u65e5\u672c/\u65e5\u672c\u8a9e.txt", None),
        ("mixed", "a b+c=d&e?f#g%h~i \u00e9 \u65e5", None),
        ("trailing-slash", "folder/", "s3s-fs maps a key ending in '/' to a directory: "
         "PutObject with a body answers UnexpectedContent, HEAD/GET answer 500"),
        ("double-slash", "a//b//c.txt", None),
        ("key-150-bytes", key150, None),
        ("key-1000-bytes", key1000, "s3s-fs 0.14.1 names its metadata file after base64(key): keys over "
         "~160 bytes give ENAMETOOLONG and PutObject answers 500 InternalError"),
    ]


# Keys whose ListObjects result s3s-fs cannot reproduce.
def list_limitation(key):
    if "//" in key:
        return "s3s-fs stores keys as file paths, so '//' collapses to '/' in listings"
    if "+" in key or "%" in key:
        return ("s3s-fs ignores encoding-type=url in ListObjects (returns raw keys), "
                "so clients that url-decode the listing mangle '+' and '%'")
    return None


if __name__ == "__main__":
    print(json.dumps(awkward_keys(), ensure_ascii=False))
