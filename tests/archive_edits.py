"""Editing nnc's .npz files by hand, as a user (or an attacker) might: the
tests of what loading refuses start from these edits."""
import json
import zipfile


def rewrite(path, header=None, drop=(), add=None):
    """Rewrite an archive: ``header(dict)`` edits the header in place,
    ``drop`` removes members, ``add`` {member: bytes} adds or replaces."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if header is not None:
        parsed = json.loads(members["header.json"])
        header(parsed)
        members["header.json"] = json.dumps(parsed).encode()
    for name in drop:
        del members[name]
    members.update(add or {})
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
