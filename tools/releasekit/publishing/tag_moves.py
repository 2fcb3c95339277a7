"""Moving an image's remote tags (`stable`, a Flux artifact's `latest`) only forward, against a registry: the OCI
distribution API has no conditional tag update, so two releases at once cannot make "read the pointer record, decide,
write" one step. The pointer record (registry_artifacts.py) is what the pointer is; its tag follows it.

For each tag that may move, a CI release:
1. reads the record and decides with git (pointers.decide); when deciding took long (a fetch), reads it again right
   before writing, and decides again if it changed; writes the record naming its commit and image.
2. waits longer than a release takes from its last read to its write (settle.py), and reads the record again:
   - it names this commit: the release moves the tag;
   - it names a commit that descends from this one: a newer release moved it meanwhile; the tag is left to it;
   - it names a commit this one descends from (an older release read before this one wrote, and wrote after): the
     release writes its record again and waits again (a bounded number of rounds);
   - anything else (diverged, unknown): left, as pointers.decide would.
3. after moving the tag, reads the record once more: when a newer release has written its record meanwhile, the
   release moves the tag on to that release's image, so that an older release's tag written last never stays.

Of two releases at once, the newer commit's record and tag are what stay. What it rests on, and what it does not
cover, is in publisher-gate.md ("Two releases at once").
"""

import logging

from releasekit.publishing import ancestry, pointers, registry_artifacts, settle

log = logging.getLogger(__name__)
ROUNDS = 6


def move_image_tags(client, destination, repository, plan, tags, release, dry_run=False):
    """Move each remote tag of a CI image release that may move (its record first, then the tag). Returns outcomes."""
    moves = [_TagMove(client, destination, repository, plan, tag, release) for tag in tags]
    for move in moves:
        move.claim(dry_run)
    waiting = [move for move in moves if move.waiting]
    for _ in range(ROUNDS):
        if not waiting:
            break
        settle.wait(max(move.gap for move in waiting))
        for move in waiting:
            move.confirm()
        waiting = [move for move in waiting if move.waiting]
    for move in waiting:
        move.give_up()
    return [move.outcome for move in moves]


class _TagMove:
    def __init__(self, client, destination, repository, plan, tag, release):
        self.client, self.repository, self.plan, self.tag = client, repository, plan, tag
        self.records = registry_artifacts.records_repository(destination.path)
        self.record_tag = registry_artifacts.pointer_tag(repository, tag)
        self.commit, self.label = release.source_version.commit, release.manifest.release
        self.workspace = release.workspace
        self.digest = plan.root["digest"]
        self.outcome, self.waiting, self.gap = None, False, None

    def _read(self):
        """(commit, digest) the record names, (None, None) when there is no record or it names no commit."""
        annotations = registry_artifacts.read_annotations(self.client, self.records, self.record_tag)
        self.record_existed = annotations is not None
        annotations = annotations or {}
        return annotations.get(registry_artifacts.REVISION) or None, annotations.get(registry_artifacts.DIGEST)

    def claim(self, dry_run):
        """Decide from the record and, when the tag moves, write the record naming this release."""
        for _ in range(ROUNDS):
            gap = settle.Gap()
            recorded, digest = self._read()
            existed = recorded is not None or self.record_existed or self.client.tag_exists(self.repository, self.tag)
            self.outcome = pointers.decide(self.tag, recorded, self.commit, self.workspace, existed)
            if not self.outcome.moves or dry_run:
                return
            if recorded == self.commit and digest == self.digest:
                self._put_tag()  # the record names this release already: no race to wait out
                return
            if gap.elapsed() > settle.REREAD_AFTER:
                gap = settle.Gap()
                if self._read() != (recorded, digest):
                    continue  # another release wrote it while this one decided
            self._write_record()
            self.gap, self.waiting = gap.written(), True
            return
        self.give_up()

    def confirm(self):
        """After the settle time: move the tag when the record still names this release; otherwise decide again."""
        recorded, digest = self._read()
        if recorded == self.commit and digest == self.digest:
            self._put_tag()
            self.waiting = False
            self._follow(*self._read())
            return
        if recorded == self.commit:  # another release of this commit, with another image: it moves the tag
            self.waiting = False
            self.outcome = pointers.PointerOutcome(self.tag, pointers.KEPT, self.commit, recorded,
                                                   "another release of this commit moved it to {}".format(
                                                       (digest or "?")[:19]))
            return
        relation = self._relation(recorded)
        if relation in (ancestry.FORWARD, None):  # an older release wrote after this one: write again, wait again
            gap = settle.Gap()
            self._write_record()
            self.gap = gap.written()
            return
        self.waiting = False
        self.outcome = pointers.PointerOutcome(self.tag, pointers.LEFT, self.commit, recorded, self._why(recorded))

    def _follow(self, recorded, digest):
        """After the tag moved: a newer release's record written meanwhile takes the tag on to its image."""
        if recorded == self.commit or recorded is None:
            return
        relation = self._relation(recorded)
        if relation == ancestry.BEHIND and digest:
            held = self.client.manifest_bytes(self.repository, digest)
            if held is not None:
                self.client.put_manifest(self.repository, self.tag, held[1] or self.plan.root["mediaType"], held[0])
            self.outcome.note = "then a release of {} moved it on".format(recorded[:12])
        elif relation == ancestry.FORWARD:  # an older record over this one's, after the check
            self._write_record()
            self._put_tag()

    def _relation(self, recorded):
        """How this commit relates to the recorded one; None when nothing is recorded."""
        if recorded is None:
            return None
        return ancestry.relation(self.workspace, recorded, self.commit).relation

    def _why(self, recorded):
        answer = ancestry.relation(self.workspace, recorded, self.commit)
        if answer.relation == ancestry.BEHIND:
            return "a release of {} moved it meanwhile: {}".format(recorded[:12], answer.detail)
        return answer.detail

    def give_up(self):
        self.waiting = False
        self.outcome = pointers.PointerOutcome(
            self.tag, pointers.LEFT, self.commit, self.outcome.recorded if self.outcome else None,
            "other releases kept moving it for {} rounds; the next release moves it".format(ROUNDS))

    def _write_record(self):
        registry_artifacts.put_artifact(self.client, self.records, self.record_tag, registry_artifacts.POINTER_TYPE, {
            registry_artifacts.REVISION: self.commit, registry_artifacts.REF_NAME: self.tag,
            registry_artifacts.REPOSITORY: self.repository, registry_artifacts.RELEASE: self.label,
            registry_artifacts.DIGEST: self.digest})

    def _put_tag(self):
        root = next(m for m in self.plan.manifests if m["digest"] == self.digest)
        self.client.put_manifest(self.repository, self.tag, self.plan.root["mediaType"], self.plan.manifest_bytes(root))
