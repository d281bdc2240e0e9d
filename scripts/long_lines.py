"""Lists Rust source lines over 100 characters (rustfmt's max_width; rustfmt leaves long string
literals, macro bodies and comments alone, so this is checked on its own). Exit 1 if any."""
import subprocess
import sys
import unicodedata

MAX = 100


def width(line):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


files = subprocess.run(["git", "ls-files", "*.rs"], capture_output=True, text=True, check=True)
long = []
for path in files.stdout.split():
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if width(line.rstrip("\n")) > MAX:
                long.append(f"{path}:{n}: {width(line.rstrip())} columns")
print("\n".join(long))
sys.exit(1 if long else 0)
