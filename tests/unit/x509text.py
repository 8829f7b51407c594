"""Reading `openssl x509 -noout -text` output: an independent view of what we issued."""
import re


def extension(text: str, title: str) -> str:
    """The value lines of one extension (the lines after its title, until the next title), joined."""
    m = re.search(rf"^ +{re.escape(title)}:(?: critical)? ?\n((?: {{16,}}.*\n)*)", text, re.M)
    assert m, f"no {title} in\n{text}"
    return " ".join(line.strip() for line in m.group(1).splitlines())


def is_critical(text: str, title: str) -> bool:
    return re.search(rf"^ +{re.escape(title)}: critical$", text, re.M) is not None
