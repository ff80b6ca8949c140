"""`newsclf explain RUN... --text ... [--method ig|attention|rollout|contributions] [--target CLASS] [--json]`."""
from __future__ import annotations

import argparse
import json

from newsclf.commands.predict import add_runs_and_text, read_text_arg
from newsclf.config import resolve_runs_dir
from newsclf.errors import UserError

METHOD_CHOICES = ("ig", "attention", "rollout", "contributions")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="why a run decided as it did: word scores (IG, attention, TF-IDF weights)")
    add_runs_and_text(p)
    p.add_argument("--method", choices=METHOD_CHOICES, default=None,
                   help="default: ig for torch runs, contributions for tfidf (where ig means the same)")
    p.add_argument("--target", default=None, help="class name or index to explain (default: the predicted class)")
    p.add_argument("--layer", type=int, default=None, help="transformer attention: layer (0-based; default last)")
    p.add_argument("--head", type=int, default=None, help="transformer attention: head (default: mean of heads)")
    p.add_argument("--steps", type=int, default=32, help="IG integration steps")
    p.add_argument("--batch-size", type=int, default=None, help="IG internal batch size (memory bound)")
    p.add_argument("--top", type=int, default=10, help="words listed per side")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print the Attribution records as JSON")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from newsclf.explain import explain
    from newsclf.predict import InputError, load_predictor

    for name, value in (("steps", args.steps), ("top", args.top), ("batch-size", args.batch_size)):
        if value is not None and value <= 0:
            raise UserError(f"{name}: must be a positive integer, got {value}")
    text = read_text_arg(args.text, args.file)
    runs_dir = resolve_runs_dir(args.runs_dir)
    records = []
    for run in args.runs:
        predictor = load_predictor(run, runs_dir, device=args.device)
        try:
            records.append(explain(predictor, text, args.method, args.target, layer=args.layer, head=args.head,
                                   n_steps=args.steps, internal_batch_size=args.batch_size))
        except InputError as exc:
            raise UserError(f"run {predictor.run_id}: {exc}") from None
    if args.json:
        out = [r.to_dict() for r in records]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
        return 0
    for rec in records:
        print(format_attribution(rec, args.top))
    return 0


def _decimals(values) -> int:
    """Decimals that give the largest |value| four significant digits (at most 8): one format per table."""
    import math

    top = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)
    if top <= 0:
        return 4
    return int(min(max(3 - math.floor(math.log10(top)), 0), 8))


def format_attribution(rec, top: int = 10) -> str:
    """A readable summary: header, completeness line, notes, then top words (for / against).

    Every number of one table has the same number of decimals (chosen from the largest score)."""
    from newsclf.explain import METHOD_NAMES

    what = METHOD_NAMES.get(rec.method, rec.method)
    if rec.method == "ig":
        what += f" ({rec.n_steps} steps)"
    if rec.layer is not None:
        what += f", layer {rec.layer}, " + ("mean of heads" if rec.head is None else f"head {rec.head}")
    probs = rec.probabilities
    lines = [f"{rec.run_id} ({rec.model}) - {what}",
             f"  target: {rec.target_label} (p={probs[rec.target]:.3f}); "
             f"predicted: {rec.predicted_label} (p={probs[rec.predicted]:.3f})"]
    pos = rec.top_words(top, 1)
    neg = rec.top_words(top, -1) if rec.signed else []
    d = _decimals([s for _, s in pos + neg])
    if rec.f_input is not None:
        words = sum(s for s in rec.scores if s is not None)
        head, base = (("score difference", "bias difference") if rec.method == "contributions"
                      else ("f(input)", "f(baseline)"))
        e = _decimals([rec.f_input, rec.f_baseline, words, rec.unaligned])
        lines.append(f"  {head} {rec.f_input:.{e}f} = {base} {rec.f_baseline:.{e}f} + word scores {words:.{e}f} "
                     f"+ other tokens {rec.unaligned:.{e}f}"
                     + (f"; convergence delta {rec.delta:.2e}" if rec.delta is not None else ""))
    lines += [f"  note: {n}" for n in rec.notes]
    if rec.signed:
        lines.append(f"  {'for ' + rec.target_label:<36}  against")
        for i in range(max(len(pos), len(neg))):
            left = f"{pos[i][1]:+.{d}f}  {pos[i][0]}" if i < len(pos) else ""
            right = f"{neg[i][1]:+.{d}f}  {neg[i][0]}" if i < len(neg) else ""
            lines.append(f"  {left:<36}  {right}")
    else:
        lines.append("  most attended words")
        lines += [f"  {s:.{d}f}  {w}" for w, s in pos]
    if not pos and not neg:
        lines.append("  (no word scored)")
    return "\n".join(lines)
