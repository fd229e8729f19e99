"""The synthetic member companies: names, size, file format and where they do business."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipelines.contracts import load_contract
from pipelines.generate.lines import market
from pipelines.generate.randomness import rng

SIZES = (1.0, 0.6, 0.4, 0.25, 0.15)
# (format, CSV encoding) of members 1, 2, 3, ... cycling.
FORMATS = (("csv", "utf-8"), ("csv", "gb18030"), ("parquet", None), ("xlsx", None), ("csv", "utf-8"))
EXTENSIONS = {"csv": "csv", "parquet": "parquet", "xlsx": "xlsx"}

# Fictional companies: English name, Chinese name, short code, home provinces (weight boost).
COMPANIES = (
    ("Dongfang Property & Casualty Insurance Co., Ltd.", "东方财产保险股份有限公司", "DFCX", {}),
    ("Lingnan General Insurance Co., Ltd.", "岭南财产保险股份有限公司", "LNGI",
     {"440000": 8.0, "450000": 3.0, "460000": 3.0, "350000": 1.5}),
    ("Pujiang Mutual Insurance Society", "浦江相互保险社", "PJMI",
     {"310000": 12.0, "320000": 3.0, "330000": 3.0, "340000": 2.0}),
    ("Tianfu Property Insurance Co., Ltd.", "天府财产保险股份有限公司", "TFPI",
     {"510000": 8.0, "500000": 4.0, "520000": 3.0, "530000": 3.0}),
    ("Qilu General Insurance Co., Ltd.", "齐鲁财产保险股份有限公司", "QLGI",
     {"370000": 8.0, "130000": 2.0, "120000": 2.0}),
    ("Jinghua Property Insurance Co., Ltd.", "京华财产保险股份有限公司", "JHPI",
     {"110000": 6.0, "130000": 3.0, "120000": 3.0}),
    ("Chutian Insurance Co., Ltd.", "楚天财产保险股份有限公司", "CTIC",
     {"420000": 8.0, "430000": 4.0, "360000": 2.0}),
    ("Xibei Agricultural Insurance Co., Ltd.", "西北农业保险股份有限公司", "XBAI",
     {"610000": 6.0, "620000": 5.0, "640000": 5.0, "630000": 5.0, "650000": 4.0}),
    ("Haixia Property & Casualty Insurance Co., Ltd.", "海峡财产保险股份有限公司", "HXPC",
     {"350000": 10.0, "330000": 2.0}),
    ("Songliao Insurance Co., Ltd.", "松辽财产保险股份有限公司", "SLIC",
     {"210000": 6.0, "220000": 6.0, "230000": 6.0, "150000": 2.0}),
)
# Members that only do business in their home provinces.
REGIONAL_ONLY = {"PJMI"}

# Rough weight of each province in the P&C market; provinces not listed weigh 1.
REGION_WEIGHTS = {
    "440000": 10, "320000": 9, "330000": 7, "370000": 6, "110000": 5, "310000": 5, "510000": 5,
    "410000": 5, "130000": 4, "420000": 4, "430000": 3.5, "350000": 3.5, "340000": 3.5,
    "210000": 2.5, "500000": 2.5, "610000": 2.5, "360000": 2, "450000": 2, "530000": 2,
    "140000": 2, "120000": 2, "650000": 1.5, "460000": 0.7, "640000": 0.5, "630000": 0.4,
    "540000": 0.2,
}
# Line tilts of a few companies (multiplied into the market's line weights).
LINE_TILTS = {"PJMI": {"HLTH": 3.0, "ACC": 2.0, "MTPL": 0.5, "MCOM": 0.5},
              "XBAI": {"AGRI": 8.0}, "HXPC": {"HULL": 5.0, "CARGO": 3.0}}


@dataclass(frozen=True)
class MemberProfile:
    member_id: str
    number: int                       # 0 for M001
    name: str
    name_zh: str
    code: str                         # used in policy, claim and transaction numbers
    size: float
    file_format: str                  # csv | parquet | xlsx
    encoding: str | None              # CSV only
    regions: Mapping[str, float]
    lines: Mapping[str, float]
    chinese_share: float              # share of free texts written in Chinese
    number_style: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.file_format]

    @property
    def format_label(self) -> str:
        return f"csv-{self.encoding}" if self.file_format == "csv" else self.file_format


def member_profiles(count: int, seed: int) -> tuple[MemberProfile, ...]:
    """Members ``M001`` .. in order; sizes and formats cycle."""
    if count < 1:
        raise ValueError("members must be at least 1")
    return tuple(_profile(i, seed) for i in range(count))


def _profile(i: int, seed: int) -> MemberProfile:
    name, name_zh, code, home = COMPANIES[i % len(COMPANIES)]
    cycle = i // len(COMPANIES)
    if cycle:
        name, name_zh, code = f"{name} ({cycle + 1})", f"{name_zh}（{cycle + 1}）", f"{code[:3]}{cycle + 1}"
    file_format, encoding = FORMATS[i % len(FORMATS)]
    return MemberProfile(
        member_id=f"M{i + 1:03d}", number=i, name=name, name_zh=name_zh, code=code,
        size=SIZES[i % len(SIZES)], file_format=file_format, encoding=encoding,
        regions=_regions(home, code in REGIONAL_ONLY), lines=_lines(code, seed, i),
        chinese_share=1.0 if encoding == "gb18030" else 0.7, number_style=i % 3)


def _regions(home: Mapping[str, float], regional_only: bool) -> dict[str, float]:
    codes = load_contract("policy").codes_of("region_code")
    weights = {c: REGION_WEIGHTS.get(c, 1.0) * home.get(c, 1.0) for c in codes}
    if regional_only:
        weights = {c: w for c, w in weights.items() if c in home} or weights
    return weights


def _lines(code: str, seed: int, i: int) -> dict[str, float]:
    r = rng(seed, "member-lines", i)
    tilt = LINE_TILTS.get(code, {})
    return {line: p.weight * tilt.get(line, 1.0) * r.lognormvariate(0.0, 0.25)
            for line, p in market().lines.items()}
