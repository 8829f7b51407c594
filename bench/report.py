"""Where benchmark reports go: printed, and written to bench/results/<name>.md for the README."""
from pathlib import Path


def publish(name: str, report: str) -> Path:
    print(report)
    out = Path(__file__).resolve().parent / "results" / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"written to {out}")
    return out
