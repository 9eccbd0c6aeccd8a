"""Reading the runs page's HTML as a browser would."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    """What a browser makes of the HTML: its elements, links, text and the rows of the runs table."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.rows: list[dict[str, str]] = []  # per <tr class="run">: the text of each cell by class, "title", "href"
        self.steps: list[str] = []  # the text of each <li class="step ...">
        self._text: list[str] = []
        self._link: tuple[str, list[str]] | None = None
        self._cell: str | None = None
        self._step_depth = 0
        self.feed(html)
        self.close()

    @property
    def text(self) -> str:
        return " ".join(" ".join(self._text).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        classes = attributes.get("class", "").split()
        if tag == "a":
            self._link = (attributes.get("href", ""), [])
        if tag == "tr" and "run" in classes:
            self.rows.append({})
        if tag == "td" and self.rows:
            self._cell = classes[0]
            self.rows[-1][self._cell] = ""
        if tag == "time" and self._cell == "time":
            self.rows[-1]["title"] = attributes.get("title", "")
        if tag == "a" and self._cell == "alert":
            self.rows[-1]["href"] = attributes.get("href", "")
        if tag == "li" and "step" in classes:
            self.steps.append("")
            self._step_depth = 1
        elif tag == "li" and self._step_depth:
            self._step_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], " ".join("".join(self._link[1]).split())))
            self._link = None
        if tag == "td":
            self._cell = None
        if tag == "li" and self._step_depth:
            self._step_depth -= 1

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._link is not None:
            self._link[1].append(data)
        if self._cell is not None:
            self.rows[-1][self._cell] = " ".join((self.rows[-1][self._cell] + " " + data).split())
        if self._step_depth:
            self.steps[-1] = " ".join((self.steps[-1] + " " + data).split())
