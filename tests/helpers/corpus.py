"""A small synthetic 20 Newsgroups corpus in the real `20news-bydate` layout, built in code.

    make_fixture_tree(root)              -> root holding 20news-bydate-train/<class>/<id> and -test/...
    make_fixture_archive(tmp_path)       -> tmp_path/20news-bydate.tar.gz of that tree
    pack_archive(root, archive)          -> tar.gz of a (possibly edited) tree

Every post has news headers (From/Subject/Organization/Lines, then a blank line) and a body of
20-80 words drawn from a per-class word list (learnable) plus shared filler; odd posts quote
another post (`In article ... writes:` + `> ...` lines holding QUOTE_MARKER) and every third post
ends with a signature (`-- ` + SIGNATURE_MARKER). "Short" posts have fewer than 5 content words
after header/footer/quote removal, so the seed protocol drops them: the first training post of
every class and the first test post of every even-indexed class (see `short_doc_ids`).
Deterministic for a given seed. The first post of alt.atheism's train set contains a latin-1 byte.
"""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from newsclf.data import CATEGORIES, TEST_FOLDER, TRAIN_FOLDER

QUOTE_MARKER = "quotemarkerword"
SIGNATURE_MARKER = "signaturemarkerword"
FIRST_ID = 10000

CLASS_WORDS: dict[str, list[str]] = {
    "alt.atheism": "atheism atheist belief morality existence secular skeptic deity dogma reason".split(),
    "comp.graphics": "graphics image render pixel polygon shading texture raytrace bitmap vertex".split(),
    "comp.os.ms-windows.misc": "windows dll driver setup registry microsoft icon taskbar wallpaper installer".split(),
    "comp.sys.ibm.pc.hardware": "motherboard scsi ide jumper bios controller ram ibm harddisk floppy".split(),
    "comp.sys.mac.hardware": "mac apple powerbook quadra macintosh nubus simm centris powermac duo".split(),
    "comp.windows.x": "xterm widget motif server xlib display window openwin toolkit resource".split(),
    "misc.forsale": "sale offer shipping price condition sell buyer obo brand asking".split(),
    "rec.autos": "car engine dealer sedan transmission brakes tires mileage horsepower toyota".split(),
    "rec.motorcycles": "bike motorcycle helmet rider harley throttle ducati saddle countersteer yamaha".split(),
    "rec.sport.baseball": "baseball pitcher inning batting homer bullpen dodgers shortstop umpire outfield".split(),
    "rec.sport.hockey": "hockey puck goalie nhl penalty playoff rink stanley slapshot defenseman".split(),
    "sci.crypt": "encryption key clipper cipher privacy escrow nsa crypto decrypt algorithm".split(),
    "sci.electronics": "circuit voltage resistor capacitor amplifier transistor solder diode oscilloscope wiring".split(),
    "sci.med": "doctor patient disease symptoms treatment medicine clinic diagnosis therapy dosage".split(),
    "sci.space": "space nasa orbit shuttle launch satellite lunar rocket astronaut telescope".split(),
    "soc.religion.christian": "church jesus christ scripture prayer gospel faith salvation sin pastor".split(),
    "talk.politics.guns": "gun firearms rifle handgun amendment ammunition weapon nra pistol holster".split(),
    "talk.politics.mideast": "israel arab palestinian jerusalem armenian turkish lebanon gaza occupation treaty".split(),
    "talk.politics.misc": "president congress tax government clinton senate policy vote deficit welfare".split(),
    "talk.religion.misc": "cult koresh waco prophecy bible spiritual biblical morals christianity heresy".split(),
}
SHARED_WORDS = ("people think know good time question problem really believe thanks make point "
                "the and is it of to that in for this have with are not you but what").split()
SHORT_BODIES = ("Thanks, me too.", "Same here.", "Me too!", "Anyone?", "Yes.")


class FixtureDoc(NamedTuple):
    split: str  # "train" | "test"
    label: int
    index: int  # position within its class folder
    file_id: int
    short: bool

    @property
    def doc_id(self) -> str:
        return f"{self.split}/{CATEGORIES[self.label]}/{self.file_id}"


def iter_layout(docs_per_class_train: int = 12, docs_per_class_test: int = 6,
                uneven: bool = False) -> Iterator[FixtureDoc]:
    """Every document of the fixture in file-id order (uneven: class i gets i % 4 extra train docs)."""
    file_id = FIRST_ID
    for split, per_class in (("train", docs_per_class_train), ("test", docs_per_class_test)):
        for label in range(len(CATEGORIES)):
            extra = label % 4 if uneven and split == "train" else 0
            for index in range(per_class + extra):
                short = index == 0 and (split == "train" or label % 2 == 0)
                yield FixtureDoc(split, label, index, file_id, short)
                file_id += 1


def short_doc_ids(docs_per_class_train: int = 12, docs_per_class_test: int = 6, uneven: bool = False) -> set[str]:
    """Doc ids of the posts the seed protocol must drop."""
    return {d.doc_id for d in iter_layout(docs_per_class_train, docs_per_class_test, uneven) if d.short}


def _post(doc: FixtureDoc, rng: np.random.Generator) -> bytes:
    name = CATEGORIES[doc.label]
    words = CLASS_WORDS[name]
    user = f"user{doc.file_id}"
    subject = " ".join(rng.choice(words, size=2))
    header = (f"From: {user}@host{doc.file_id % 7}.example.edu\nSubject: Re: {subject}\n"
              f"Organization: Example University {doc.label}\nLines: {int(rng.integers(5, 40))}\n\n")
    parts = []
    if doc.file_id % 2 == 1:
        quoted = " ".join(rng.choice(SHARED_WORDS, size=6))
        parts.append(f"In article <{doc.file_id}@example.edu> someone@example.edu writes:\n"
                     f"> {QUOTE_MARKER} {quoted}\n> {quoted}")
    if doc.short:
        parts.append(SHORT_BODIES[doc.file_id % len(SHORT_BODIES)])
    else:
        n = int(rng.integers(20, 81))
        pool = [str(w) for w in rng.choice(words, size=n)]
        filler = [str(w) for w in rng.choice(SHARED_WORDS, size=n)]
        body = [pool[i] if rng.random() < 0.5 else filler[i] for i in range(n)]
        body[0] = pool[0]  # at least one class word, and 5+ content words in practice
        body[1:5] = pool[1:5]
        parts.append("\n".join(" ".join(body[i:i + 12]) for i in range(0, n, 12)))
    text = header + "\n".join(parts)
    if doc.file_id % 3 == 0:
        text += f"\n\n-- \n{user} | {SIGNATURE_MARKER}"
    if doc.split == "train" and doc.label == 0 and doc.index == 1:
        text += "\nna\u00efve"  # a latin-1 byte (0xEF)
    return (text + "\n").encode("latin1")


def make_fixture_tree(root: Path, docs_per_class_train: int = 12, docs_per_class_test: int = 6,
                      seed: int = 0, uneven: bool = False) -> Path:
    """Write the corpus folders under `root` (created); return `root`."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for doc in iter_layout(docs_per_class_train, docs_per_class_test, uneven):
        folder = root / (TRAIN_FOLDER if doc.split == "train" else TEST_FOLDER) / CATEGORIES[doc.label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(doc.file_id)).write_bytes(_post(doc, rng))
    return root


def pack_archive(root: Path, archive: Path) -> Path:
    """Pack the split folders found under `root` into a tar.gz at `archive` (top-level entries as in the real one)."""
    with tarfile.open(archive, "w:gz") as tar:
        for child in sorted(Path(root).iterdir()):
            tar.add(child, arcname=child.name)
    return Path(archive)


def make_fixture_archive(tmp_path: Path, docs_per_class_train: int = 12, docs_per_class_test: int = 6,
                         seed: int = 0, uneven: bool = False) -> Path:
    """Build the fixture tree in `tmp_path/fixture_tree` and return `tmp_path/20news-bydate.tar.gz`."""
    tmp_path = Path(tmp_path)
    root = make_fixture_tree(tmp_path / "fixture_tree", docs_per_class_train, docs_per_class_test, seed, uneven)
    return pack_archive(root, tmp_path / "20news-bydate.tar.gz")
