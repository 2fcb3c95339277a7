"""The directory store (file:///path): a local or mounted directory. Files are staged beside their place and renamed
into it, so readers see the old file or the new one, never half of one; conditional writes compare the file's
SHA-256; the lock is flock on a file in the directory."""

import contextlib
import fcntl
import hashlib
import os

from releasekit.core.errors import ConflictError, StoreError
from releasekit.core.jsonio import staged
from releasekit.core.stores.streaming import FileBody

LOCK_FILE = ".releasekit.lock"


class DirectoryStore:
    conditional_writes = True

    def __init__(self, destination, policy=None, credentials=None, environ=None):
        self.destination = destination
        self.root = destination.path

    def with_policy(self, policy):
        return self  # local writes are not retried

    def describe(self, path=""):
        return "file://" + os.path.join(self.root, path)

    def _path(self, path):
        return os.path.join(self.root, path)

    def get(self, path):
        try:
            with open(self._path(path), "rb") as handle:
                content = handle.read()
        except FileNotFoundError:
            return None, None
        except OSError as error:
            raise StoreError("Cannot read {}: {}.".format(self.describe(path), error.strerror)) from None
        return content, hashlib.sha256(content).hexdigest()

    def exists(self, path):
        return os.path.exists(self._path(path))

    def put(self, path, data, if_match=None, if_none_match=False):
        self._write(path, [data], if_match, if_none_match)

    def put_file(self, path, local_path):
        self._write(path, FileBody(local_path))

    def _write(self, path, chunks, if_match=None, if_none_match=False):
        target = self._path(path)
        try:
            with staged(os.path.dirname(target)) as (handle, tmp):
                for chunk in chunks:
                    handle.write(chunk)
                handle.close()
                if if_match is not None and self.get(path)[1] != if_match:
                    raise ConflictError("{} changed while it was being merged.".format(self.describe(path)))
                if if_none_match:
                    try:
                        os.link(tmp, target)  # atomic create-only
                    except FileExistsError:
                        raise ConflictError("{} appeared while it was being merged.".format(
                            self.describe(path))) from None
                    return
                os.replace(tmp, target)
        except OSError as error:
            raise StoreError("Cannot write {}: {}.".format(self.describe(path), error.strerror)) from None

    def delete(self, path):
        try:
            os.unlink(self._path(path))
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StoreError("Cannot delete {}: {}.".format(self.describe(path), error.strerror)) from None

    def list(self, directory):
        """The names in directory, subdirectories ending in '/'; files being staged are left out."""
        try:
            entries = list(os.scandir(self._path(directory)))
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StoreError("Cannot list {}: {}.".format(self.describe(directory), error.strerror)) from None
        return sorted(e.name + ("/" if e.is_dir() else "") for e in entries if not e.name.startswith("."))

    @contextlib.contextmanager
    def lock(self, directory):
        os.makedirs(self._path(directory), exist_ok=True)
        with open(os.path.join(self._path(directory), LOCK_FILE), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
