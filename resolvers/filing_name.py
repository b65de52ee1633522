"""The naming rule for a filed alliance and the province a filing belongs to.

Seed 003 (三(三)): a provincial alliance is named 「陕西×××（专业类别）专科联盟/联盟/专科医联体」, and only
a filed one may use such a name. Read as 「province + lead unit + specialty + suffix」, with the
province the lead hospital's (GB/T 2260: the first two digits of its division code), e.g.
河南省洛阳正骨医院骨伤专科联盟. Municipal, regional and cross-provincial alliances are named after
their city or region (西安市xx专科联盟, 西咸xx专科联盟, 西北xx专科联盟): for them the rule checks the
specialty and the suffix only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from resolvers.errors import GatewayError, bad_input

SUFFIXES = ("专科联盟", "专科医联体", "联盟")


@dataclass(frozen=True, slots=True)
class Province:
    short: str  # 陕西
    full: str  # 陕西省
    abbreviation: str  # 陕: the first character of its documents' numbers


PROVINCES: dict[str, Province] = {
    code: Province(short, full, abbreviation)
    for code, short, full, abbreviation in (
        ("11", "北京", "北京市", "京"),
        ("12", "天津", "天津市", "津"),
        ("13", "河北", "河北省", "冀"),
        ("14", "山西", "山西省", "晋"),
        ("15", "内蒙古", "内蒙古自治区", "蒙"),
        ("21", "辽宁", "辽宁省", "辽"),
        ("22", "吉林", "吉林省", "吉"),
        ("23", "黑龙江", "黑龙江省", "黑"),
        ("31", "上海", "上海市", "沪"),
        ("32", "江苏", "江苏省", "苏"),
        ("33", "浙江", "浙江省", "浙"),
        ("34", "安徽", "安徽省", "皖"),
        ("35", "福建", "福建省", "闽"),
        ("36", "江西", "江西省", "赣"),
        ("37", "山东", "山东省", "鲁"),
        ("41", "河南", "河南省", "豫"),
        ("42", "湖北", "湖北省", "鄂"),
        ("43", "湖南", "湖南省", "湘"),
        ("44", "广东", "广东省", "粤"),
        ("45", "广西", "广西壮族自治区", "桂"),
        ("46", "海南", "海南省", "琼"),
        ("50", "重庆", "重庆市", "渝"),
        ("51", "四川", "四川省", "川"),
        ("52", "贵州", "贵州省", "黔"),
        ("53", "云南", "云南省", "滇"),
        ("54", "西藏", "西藏自治区", "藏"),
        ("61", "陕西", "陕西省", "陕"),
        ("62", "甘肃", "甘肃省", "甘"),
        ("63", "青海", "青海省", "青"),
        ("64", "宁夏", "宁夏回族自治区", "宁"),
        ("65", "新疆", "新疆维吾尔自治区", "新"),
        ("71", "台湾", "台湾省", "台"),
        ("81", "香港", "香港特别行政区", "港"),
        ("82", "澳门", "澳门特别行政区", "澳"),
    )
}


class NamingProblem(StrEnum):
    """What is wrong with a name, as `extensions.rule` of the BAD_USER_INPUT."""

    LENGTH = "LENGTH"
    SUFFIX = "SUFFIX"
    PROVINCE_PREFIX = "PROVINCE_PREFIX"
    SPECIALTY = "SPECIALTY"
    LEAD_UNIT = "LEAD_UNIT"


def province_of(division_code: str) -> Province | None:
    return PROVINCES.get(division_code[:2])


def specialty_words(specialty: str) -> list[str]:
    """How a name may say the specialty: 骨伤科（骨科、创伤） as 骨伤科 or 骨伤."""
    core = re.sub(r"[（(].*?[）)]", "", specialty).strip()
    words = [core]
    if core.endswith("科") and len(core) > 1:
        words.append(core[:-1])
    return [w for w in words if w]


def _refuse(problem: NamingProblem, message: str) -> GatewayError:
    return bad_input(
        f"The alliance's name does not follow the naming rule (seed 003: 「省名+牵头单位+专业类别+"
        f"专科联盟」): {message}",
        field="input.name",
        rule=problem.value,
    )


def check_name(name: str, *, level: str, specialty: str, division_code: str) -> str:
    """The name, stripped, if it follows the rule; BAD_USER_INPUT naming what is wrong."""
    name = name.strip()
    if not 4 <= len(name) <= 100:
        raise _refuse(NamingProblem.LENGTH, "it must hold 4 to 100 characters.")
    suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise _refuse(NamingProblem.SUFFIX, "it must end with 专科联盟, 联盟 or 专科医联体.")
    body = name[: -len(suffix)]
    if level == "PROVINCIAL":
        province = province_of(division_code)
        if province is not None:
            prefix = next((p for p in (province.full, province.short) if body.startswith(p)), None)
            if prefix is None:
                raise _refuse(
                    NamingProblem.PROVINCE_PREFIX,
                    f"a provincial alliance's name starts with its province, {province.full} "
                    f"or {province.short} (the lead hospital's).",
                )
            body = body[len(prefix) :]
    words = specialty_words(specialty)
    found = [(body.find(w), w) for w in words if w in body]
    if not found:
        raise _refuse(
            NamingProblem.SPECIALTY,
            f"it must name the specialty ({' or '.join(words)}) before {suffix}.",
        )
    position = min(found)[0]
    if level == "PROVINCIAL" and position == 0:
        raise _refuse(
            NamingProblem.LEAD_UNIT,
            "the lead unit (牵头单位) goes between the province and the specialty.",
        )
    return name
