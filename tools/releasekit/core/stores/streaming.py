"""A file's bytes as a request or write body: streamed in 1 MiB chunks, with a known length."""

import os

CHUNK = 1 << 20


class FileBody:
    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)

    def __len__(self):
        return self.size

    def __iter__(self):
        with open(self.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                yield chunk
