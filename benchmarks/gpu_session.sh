#!/usr/bin/env bash
# Every GPU figure of the speed issue in ONE run on a lent GPU machine (benchmarks/RESULTS.md, "GPU").
#
#   python benchmarks/gpu_carry.py                     # here, once: builds gpu_carry/ (git-ignored, < 60 MiB)
#   bash benchmarks/gpu_session.sh --toy               # here: the same steps at toy size on the CPU (dry run)
#   bash benchmarks/gpu_session.sh                     # there (device tool: carry ["gpu_carry"], timeout 590)
#
# Each step runs under `timeout`, within one global budget (BUDGET seconds, default 540), in order of
# value; a step that fails or runs out of time does not stop the others. Logs and a summary go to $OUT
# (default ./gpu_out) as gpu_session.tar.gz + summary.txt. Needs no network: the corpus archive, captum's
# wheel and MiniLM's real weights come from gpu_carry/; DistilBERT/BERT-base-size models are built here
# with random weights (speed does not depend on the weights).
set -uo pipefail
cd "$(dirname "$0")/.."

TOY=0
[ "${1:-}" = "--toy" ] && TOY=1
CARRY=${CARRY:-gpu_carry}
OUT=${OUT:-$PWD/gpu_out}
BUDGET=${BUDGET:-540}
W=$(mktemp -d)
LOGS="$OUT/logs"
mkdir -p "$LOGS"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export NEWSCLF_MINILM_DIR="$PWD/$CARRY/minilm"
PY=${PYTHON:-python3}
START=$SECONDS

say() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME LIMIT_SECONDS COMMAND...: run under timeout within what is left of the budget
step() {
  local name=$1 limit=$2 left rc t0
  shift 2
  left=$((BUDGET - (SECONDS - START)))
  if [ "$left" -lt 15 ]; then say "SKIP $name: budget spent"; return 0; fi
  [ "$limit" -gt "$left" ] && limit=$left
  t0=$SECONDS
  timeout --kill-after=5 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  say "== $name: rc=$rc, $((SECONDS - t0)) s (limit $limit s)"
  tail -n 25 "$LOGS/$name.log" | sed 's/^/   /' >> "$SUMMARY"
}

if [ "$TOY" = 1 ]; then
  DEVICE=cpu; LIMIT="--limit-train 96"; MAXLEN=64; EPOCHS=1; BIG_EPOCHS=1; STEPS=20; SYNC_STEPS=4
  CONFIG_SIZE=toy
else
  DEVICE=cuda; LIMIT=""; MAXLEN=512; EPOCHS=3; BIG_EPOCHS=3; STEPS=1000; SYNC_STEPS=60
  CONFIG_SIZE=full
fi

say "# gpu_session $(date -u +%FT%TZ) toy=$TOY budget=${BUDGET}s"
{ uptime; nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv 2>/dev/null
  $PY -c "import torch, transformers, sys; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"
} 2>&1 | tee -a "$SUMMARY"

# 0. captum (pure Python) if missing: imported straight from its wheel (a zip on PYTHONPATH; no pip, so no
#    "externally managed environment" refusal); the corpus; full-size random-weight models
if ! $PY -c "import captum" 2>/dev/null; then
  for wheel in "$CARRY"/wheels/captum-*.whl; do export PYTHONPATH="$PWD/$wheel${PYTHONPATH:+:$PYTHONPATH}"; done
  $PY -c "import captum.attr" 2>&1 | tee -a "$SUMMARY" || true
fi
step import 60 $PY -m newsclf data import "$CARRY/20news-bydate.tar.gz" --data-home "$W/data"
step models 60 $PY - "$W/models" "$CONFIG_SIZE" <<'EOF'
import sys, os, torch
from pathlib import Path
from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification)
root, size = Path(sys.argv[1]), sys.argv[2]
tok = AutoTokenizer.from_pretrained(os.environ["NEWSCLF_MINILM_DIR"])
torch.manual_seed(0)
small = dict(dim=64, hidden_dim=128, n_layers=2, n_heads=2) if size == "toy" else {}
bsmall = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2) if size == "toy" else {}
for name, model in (("distilbert-base", DistilBertForSequenceClassification(DistilBertConfig(num_labels=20, **small))),
                    ("bert-base", BertForSequenceClassification(BertConfig(num_labels=20, **bsmall)))):
    model.save_pretrained(str(root / name)); tok.save_pretrained(str(root / name))
    print(name, sum(p.numel() for p in model.parameters()), "parameters")
EOF

D="--data-home $W/data --runs-dir $W/runs --device $DEVICE"
# 1. loop overhead against a bare loop (target <= 1.1x) and syncs in the hot loop (target: <= 1 per interval)
step overhead 60 $PY benchmarks/bench_train_overhead.py --device "$DEVICE" --docs 8192 --steps "$STEPS" --repeats 3
step sync-distilbert 60 $PY benchmarks/gpu_sync_check.py --pretrained "$W/models/distilbert-base" --steps "$SYNC_STEPS" \
  --max-len "$MAXLEN" --data-home "$W/data"
# 2. end to end through the CLI: train_seconds, inference_ms_per_doc, inference_ms_single (results.json)
step train-distilbert 150 $PY -m newsclf train --model transformer --pretrained "$W/models/distilbert-base" --strategy full \
  --epochs "$EPOCHS" --max-len "$MAXLEN" --name distilbert-size $LIMIT $D
step train-bilstm 120 $PY -m newsclf train --model bilstm --num-layers 2 --dropout 0.3 --embed-dropout 0.3 --patience 0 \
  --epochs 5 --name bilstm-study-size $LIMIT $D
# 3. ours vs the naive loop, same process (target: ours >= 2x naive)
step speed-distilbert 90 $PY benchmarks/bench_transformer.py --pretrained "$W/models/distilbert-base" --device "$DEVICE" \
  --max-len "$MAXLEN" --batch-size 32 --speed --speed-steps 40 --speed-docs 512 --data-home "$W/data"
step train-bert 150 $PY -m newsclf train --model transformer --pretrained "$W/models/bert-base" --strategy full \
  --epochs "$BIG_EPOCHS" --max-len "$MAXLEN" --name bert-size $LIMIT $D
# 4. accuracy unchanged: MiniLM real weights, 512 tokens, 4 epochs, lr 1e-4 (76.3 % val / 72.65 % test before)
step train-minilm 120 $PY -m newsclf train --model transformer --pretrained "$NEWSCLF_MINILM_DIR" --strategy full \
  --epochs $([ "$TOY" = 1 ] && echo 1 || echo 4) --lr 1e-4 --max-len "$MAXLEN" --name minilm $LIMIT $D
# 5. IG on the GPU, completeness next to time
step explain 90 $PY benchmarks/bench_explain.py --device "$DEVICE" --cases distilbert-ig,bilstm-ig --repeats 3

# summary of the runs (results.json + the median interval between step events)
$PY - "$W/runs" >> "$SUMMARY" 2>&1 <<'EOF'
import json, statistics, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1]).glob("*")):
    try:
        r = json.loads((run / "results.json").read_text())
    except OSError:
        print(run.name, "no results.json"); continue
    steps = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"type": "step"' in l]
    gaps = [b["time"] - a["time"] for a, b in zip(steps, steps[1:]) if b["epoch"] == a["epoch"]]
    print(f"{run.name}: train_seconds {r.get('train_seconds', float('nan')):.1f}, val {r.get('val_acc', 0):.4f}, "
          f"test {r.get('test_acc', 0):.4f}, inference ms/doc {r.get('inference_ms_per_doc', 0):.3f}, "
          f"single {r.get('inference_ms_single', 0):.1f} ms, median step {1e3 * statistics.median(gaps) if gaps else 0:.1f} ms")
EOF
say "# done in $((SECONDS - START)) s"
tar -czf "$OUT/gpu_session.tar.gz" -C "$OUT" logs summary.txt 2>/dev/null
rm -rf "$W"
