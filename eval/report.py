"""The report folder of an evaluation: results.json (stable shape), report.md (tables), PNG plots, ranked runs.

Example:
    >>> folder = write_report(result, Path("eval/reports/scifact-train"))
    >>> sorted(p.name for p in folder.iterdir())
    ['latency.png', 'quality.png', 'quality_vs_bytes.png', 'report.md', 'results.json', 'runs']

`results.json` keeps this shape for other tools (more keys may be added, none renamed):
{"dataset", "split", "queries", "configs": {NAME: {"p@5", "r@5", "mrr@10", "ndcg@10",
"latency_ms": {"p50", "p95"}, "bytes_per_chunk": {"ram", "disk"}, "ci95": {...}, "per_query": {...}, ...}}, ...}.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from eval.footprint import RAM_NOTE
from eval.metrics import HEADERS, LABELS, METRICS
from eval.run import ConfigResult, EvalResult

SIGNIFICANT_P = 0.05


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def config_json(cr: ConfigResult) -> dict[str, Any]:
    out: dict[str, Any] = {LABELS[m]: _r(cr.summary[m]["mean"]) for m in METRICS}
    lat = cr.latency()
    out.update({
        "latency_ms": {"p50": _r(lat["p50"], 2), "p95": _r(lat["p95"], 2)},
        "bytes_per_chunk": {"ram": cr.ram_bytes_per_chunk, "disk": _r(cr.disk_bytes_per_chunk, 0)},
        "bytes_per_vector": {"ram": cr.bytes_per_vector, "rescore_from_disk": cr.rescore_bytes_per_vector},
        "chunks": cr.chunks,
        "index_bytes": {
            "ram": cr.ram_bytes_per_chunk * cr.chunks,
            "disk": _r(cr.disk_bytes_per_chunk * cr.chunks, 0) if cr.disk_bytes_per_chunk else None,
        },
        "ci95": {LABELS[m]: [_r(v) for v in cr.summary[m]["ci95"]] for m in METRICS},
        "significance": {
            ref: {LABELS[m]: {"diff": _r(v["diff"]), "p_value": _r(v["p_value"])} for m, v in by_metric.items()}
            for ref, by_metric in cr.significance.items()
        },
        "description": cr.config.description,
        "settings": cr.config.settings_overrides(),
        "failed_queries": cr.errors,
        "per_query": {LABELS[m]: {q: _r(v) for q, v in cr.per_query[m].items()} for m in METRICS},
    })
    return out


def embed_precision(info: dict[str, Any]) -> str:
    """The precision the embedder ran in (recorded by the run; older runs only kept the setting)."""
    return str(info.get("embed_precision") or info["settings"].get("embed_precision", "float32"))


def results_json(result: EvalResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dataset": result.dataset,
        "split": result.split,
        "queries": result.queries,
        "embedder": result.embedder,
        "embed_precision": embed_precision(result.run_info),
        "baseline": result.baseline,
        "configs": {name: config_json(cr) for name, cr in result.configs.items()},
        "indexes": result.indexes,
        "significance_test": "paired randomization (Fisher), two-sided, on per-query scores; "
        "scipy.stats.permutation_test, 10,000 resamples or exact",
        "ci": "95% percentile bootstrap over queries (scipy.stats.bootstrap, 2,000 resamples)",
        "bytes_note": RAM_NOTE,
        "run": result.run_info,
        "notes": result.notes,
    }
    if result.answers is not None:
        out["answers"] = {"answerer": result.answers.answerer, **result.answers.summary,
                          "per_question": result.answers.per_question}
    return out


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _cell(cr: ConfigResult, metric: str) -> str:
    return f"{cr.summary[metric]['mean']:.3f}"


def markdown_table(result: EvalResult) -> str:
    base = result.baseline
    head = ["config", *(HEADERS[m] for m in METRICS), "nDCG@10 95% CI", f"Δ nDCG@10 vs {base} (p)",
            "p50 ms", "p95 ms", "RAM B/chunk", "disk B/chunk"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, cr in result.configs.items():
        low, high = cr.summary["ndcg@10"]["ci95"]
        sig = cr.significance.get(base, {}).get("ndcg@10")
        delta = "—" if sig is None else (
            f"{sig['diff']:+.3f} ({sig['p_value']:.3f}){' *' if sig['p_value'] < SIGNIFICANT_P else ''}"
        )
        lat = cr.latency()
        disk = f"{cr.disk_bytes_per_chunk:,.0f}" if cr.disk_bytes_per_chunk else "—"
        lines.append("| " + " | ".join([
            name, *(_cell(cr, m) for m in METRICS), f"{low:.3f}–{high:.3f}", delta,
            _ms(lat["p50"]), _ms(lat["p95"]), f"{cr.ram_bytes_per_chunk:,}", disk,
        ]) + " |")
    return "\n".join(lines)


def answers_table(result: EvalResult) -> str:
    if result.answers is None:
        return ""
    s = result.answers.summary
    rows = [
        ("questions", f"{s['questions']}"),
        ("exact match (citation markers left out)", f"{s['exact_match']:.3f}"),
        ("token F1 (citation markers left out)", f"{s['token_f1']:.3f} (answered only: {s['token_f1_answered']:.3f}"
         + (f"; markers scored as words, as reports before 2026-12-01 did: {s['token_f1_with_markers']:.3f})"
            if "token_f1_with_markers" in s else ")")),
        ("answer contains the short reference",
         f"{s['answer_contains_reference']:.3f} (n={s['answer_contains_reference_n']})"),
        ("citation contains the answer", f"{s['citation_contains_answer']:.3f} (n={s['citation_contains_answer_n']})"),
        ("citation from a gold document", f"{s['citation_in_gold']:.3f}"),
        ("abstained, answer in the corpus", f"{s['abstention_answerable']:.3f}"),
        ("abstained, gold documents hidden", f"{s['abstention_unanswerable']:.3f}"),
        ("seconds per answer (p50)", f"{s['seconds_p50']:.2f}"),
    ]
    return "\n".join(["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


def markdown_report(result: EvalResult) -> str:
    info = result.run_info
    parts = [
        f"# {result.dataset} ({result.split}): retrieval evaluation",
        "",
        f"{result.queries} queries, embedder {result.embedder} ({embed_precision(info)}), "
        f"gold unit {info['gold_unit']}, "
        f"{info['depth']} chunks retrieved per query (documents ranked by their best chunk), seed {info['seed']}, "
        f"commit {info.get('git_commit')}, {info.get('cpus')} CPUs, {info.get('seconds', '?')} s.",
        "",
        markdown_table(result),
        "",
        f"Δ: mean per-query difference from `{result.baseline}`, two-sided paired randomization test; "
        f"* p < {SIGNIFICANT_P}. CI: 95% percentile bootstrap over queries. Latency: wall time per query "
        "(query embedding included), one query at a time.",
        "",
        RAM_NOTE,
        "",
        "| config | what it is |",
        "|---|---|",
        *(f"| {name} | {cr.config.description} |" for name, cr in result.configs.items()),
        "",
        "![quality vs bytes](quality_vs_bytes.png) ![quality](quality.png) ![latency](latency.png)",
    ]
    if result.answers is not None:
        parts += ["", f"## Answers: {result.answers.answerer}", "", answers_table(result)]
    if result.notes:
        parts += ["", "Notes: " + " ".join(result.notes)]
    return "\n".join(parts) + "\n"


def write_plots(result: EvalResult, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.configs)
    configs = [result.configs[n] for n in names]
    means = [c.summary["ndcg@10"]["mean"] for c in configs]
    errors = [[m - c.summary["ndcg@10"]["ci95"][0] for m, c in zip(means, configs, strict=True)],
              [c.summary["ndcg@10"]["ci95"][1] - m for m, c in zip(means, configs, strict=True)]]
    title = f"{result.dataset} ({result.split}, {result.queries} queries)"
    paths = []

    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    markers = iter("ov^<>sPXD*hp" * 2)
    for cr in configs:
        if cr.bytes_per_vector is None:
            continue
        x = cr.bytes_per_vector + cr.rescore_bytes_per_vector
        mean = cr.summary["ndcg@10"]["mean"]
        low, high = cr.summary["ndcg@10"]["ci95"]
        # Hollow markers: part of the bytes (the rescoring copy) is read from disk, only the codes sit in RAM.
        face = "none" if cr.rescore_bytes_per_vector else None
        ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], fmt=next(markers), capsize=2, mfc=face, mew=1.5,
                    elinewidth=0.8, alpha=0.9, label=f"{cr.config.name} ({x:,} B)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dense bytes per vector used for scoring (log scale; hollow = codes in RAM + rescoring copy on disk)",
                  fontsize=8)
    ax.set_ylabel("nDCG@10 (95% CI)")
    ax.set_title(f"Quality against vector size: {title}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(folder / "quality_vs_bytes.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.5))
    ax.barh(names, means, xerr=errors, capsize=3, color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlabel("nDCG@10 (95% CI)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    paths.append(folder / "quality.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.5))
    p50 = [c.latency()["p50"] for c in configs]
    p95 = [c.latency()["p95"] for c in configs]
    ax.barh(names, p95, color="#dd8452", label="p95")
    ax.barh(names, p50, color="#4c72b0", label="p50")
    ax.invert_yaxis()
    ax.set_xlabel("ms per query")
    ax.legend()
    ax.set_title(f"Latency: {title}", fontsize=10)
    fig.tight_layout()
    paths.append(folder / "latency.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def write_runs(result: EvalResult, folder: Path) -> None:
    """Top-10 gold units per query and configuration (JSON: ids may hold spaces), for anyone to re-score."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, cr in result.configs.items():
        ranked = {qid: cr.ranked[qid] for qid in sorted(cr.ranked)}
        (folder / f"{name}.json").write_text(json.dumps(ranked, indent=0), encoding="utf-8")


def write_report(result: EvalResult, folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results_json(result), indent=1, default=str), encoding="utf-8")
    (folder / "report.md").write_text(markdown_report(result), encoding="utf-8")
    write_runs(result, folder / "runs")
    if result.configs:
        write_plots(result, folder)
    return folder
