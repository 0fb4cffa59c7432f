"""kubectl's label selectors (`-l`), as the API server matches them against labels.

Owns: the selector syntax of `kubectl get/apply/delete -l`. Must not know: kinds, files.
"""

from __future__ import annotations


def label_selector_matches(labels: dict[str, str], selector: str | None) -> bool:
    """kubectl's `-l`: `k=v`, `k==v`, `k!=v`, `k` (exists), `!k` (absent),
    `k in (a,b)`, `k notin (a,b)`; a comma means "and"."""
    if not selector:
        return True
    for term in _selector_terms(selector):
        if " in " in f" {term} " or " notin " in f" {term} ":
            key, op, values = term.replace("(", " ( ").split(None, 2)
            wanted = {v.strip() for v in values.strip(" ()").split(",")}
            if (op == "in") != (labels.get(key) in wanted):
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _selector_terms(selector: str) -> list[str]:
    """Split on the commas between terms, not those inside `in (a,b)`."""
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in selector:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            terms.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur).strip())
    return [t for t in terms if t]
