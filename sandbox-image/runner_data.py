"""Attached files: kept once per runner by sha256 in the data directory, read-only to blocks,
linked into a block's scratch directory under their names, least recently used evicted past
the budget."""

import collections
import hashlib
import os
import runner_confine

# --- Attached files ----------------------------------------------------------------------------


def safe_name(name):
    """A file name a block may see: no directories, no hidden files, nothing odd."""
    return (isinstance(name, str) and 0 < len(name) <= 128 and not name.startswith(".")
            and all(c.isalnum() or c in "._-" for c in name))


class DataCache:
    """Attached files by sha256, written once per runner (put_file) and read-only to blocks;
    the least recently used are evicted past the budget."""

    def __init__(self, root, budget):
        self.root = root
        self.budget = budget
        self.files = collections.OrderedDict()  # sha256 -> size, least recently used first
        if root:
            os.makedirs(root, exist_ok=True)

    def path(self, sha):
        return os.path.join(self.root, sha)

    def put(self, sha, data):
        """Stores `data` as `sha`; returns the evicted shas. Raises ValueError when it cannot."""
        if not self.root:
            raise ValueError("this runner has no data directory (START_SANDBOX_DATA)")
        if not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise ValueError("sha256 %r is not 64 lower-case hex digits" % (sha,))
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise ValueError("the file sent as %s has sha256 %s" % (sha, got))
        if len(data) > self.budget:
            raise ValueError("a file of %d bytes is over the runner's data budget of %d bytes"
                             % (len(data), self.budget))
        evicted = []
        if sha in self.files:
            self.files.move_to_end(sha)
            return evicted
        while self.files and sum(self.files.values()) + len(data) > self.budget:
            old, _ = self.files.popitem(last=False)
            try:
                os.chmod(self.path(old), 0o600)
                os.unlink(self.path(old))
            except OSError:
                pass
            evicted.append(old)
        tmp = self.path(".incoming-" + sha)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o444)
        os.replace(tmp, self.path(sha))
        self.files[sha] = len(data)
        return evicted

    def link(self, files, into):
        """Makes each file of `files` ([{name, sha256}]) appear in `into` under its name. Raises
        ValueError for a file never sent or (without Landlock) changed since."""
        for f in files or []:
            name, sha = f.get("name"), f.get("sha256")
            if not safe_name(name):
                raise ValueError("attached file name %r is not allowed" % (name,))
            if sha not in self.files:
                raise ValueError("attached file %s (%s) was never sent to this runner" % (name, sha))
            self.files.move_to_end(sha)
            src = self.path(sha)
            if not runner_confine.LANDLOCK_ABI:
                with open(src, "rb") as fh:
                    if hashlib.sha256(fh.read()).hexdigest() != sha:
                        raise ValueError("attached file %s changed since it was sent" % name)
            dst = os.path.join(into, name)
            if os.path.lexists(dst):
                os.unlink(dst)
            os.symlink(src, dst)
