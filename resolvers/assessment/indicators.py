"""The 30 indicators of seed 001 Annex 4 (numbered 1–31, there is no 3), as data.

Kinds (DOMAIN.md §7): F computed from data the alliance already federates, N computed from the
exchange contract's specialty volumes, surveys and capacity-building records, E an external score
the office enters (the provincial specialty QC centre's), A scored by named assessors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    F = "F"
    N = "N"
    E = "E"
    A = "A"


class Rule(StrEnum):
    """How a computed value earns its points (scoring.py)."""

    AT_LEAST = "AT_LEAST"  # a yearly threshold
    RISING = "RISING"  # this year above the previous year's same months
    FALLING = "FALLING"
    COST_REASONABLE = "COST_REASONABLE"  # growth of cost per visit and per stay within a limit
    SATISFACTION = "SATISFACTION"  # survey rates above their thresholds
    QC_PASSED = "QC_PASSED"  # E: the share of members that passed
    ASSESSED = "ASSESSED"  # A: an assessor's score


class Group(StrEnum):
    ORGANISATION = "ORGANISATION"  # 1.组织实施
    DIVISION_OF_LABOUR = "DIVISION_OF_LABOUR"  # 2.分工协作
    FLOW_OF_RESOURCES = "FLOW_OF_RESOURCES"  # 3.医疗资源上下贯通
    EFFICIENCY = "EFFICIENCY"  # 4.效率效益
    SUSTAINABILITY = "SUSTAINABILITY"  # 5.可持续发展


GROUP_TEXT = {
    Group.ORGANISATION: "组织实施",
    Group.DIVISION_OF_LABOUR: "分工协作",
    Group.FLOW_OF_RESOURCES: "医疗资源上下贯通",
    Group.EFFICIENCY: "效率效益",
    Group.SUSTAINABILITY: "可持续发展",
}

DOCUMENTS = "查阅文件"
DOCUMENTS_AND_SITE = "查阅文件，现场查看工作资料"
DOCUMENTS_AND_PATIENTS = "查阅文件,询问患者"
DATA = "查看报表或信息系统数据"


@dataclass(frozen=True, slots=True)
class Indicator:
    number: int
    group: Group
    text: str  # the seed's words
    gloss: str
    points: float
    kind: Kind
    method: str  # 考核方法, as the seed names it
    rule: Rule
    unit: str = ""


def _a(number: int, group: Group, text: str, gloss: str, points: float, method: str) -> Indicator:
    return Indicator(number, group, text, gloss, points, Kind.A, method, Rule.ASSESSED)


ORG, DIV, RES, EFF, SUS = (
    Group.ORGANISATION,
    Group.DIVISION_OF_LABOUR,
    Group.FLOW_OF_RESOURCES,
    Group.EFFICIENCY,
    Group.SUSTAINABILITY,
)

CATALOGUE: tuple[Indicator, ...] = (
    _a(1, ORG, "明确牵头单位和成员单位职责分工", "Lead and member duties defined", 2.5, DOCUMENTS),
    _a(
        2,
        ORG,
        "专科（技术）联盟牵头单位根据职责分工制定联盟发展规划，包括成员单位设备配备、人才培养、技术培训、专科建设等",
        "Development plan (equipment, talent, training, specialty building)",
        2.5,
        DOCUMENTS,
    ),
    _a(
        4,
        ORG,
        "专科（技术）联盟成员单位配备相应的医、技、护人员以及所需的相关设备和设施",
        "Members staffed and equipped",
        2.5,
        DOCUMENTS_AND_SITE,
    ),
    _a(
        5,
        ORG,
        "医联体内促进医疗资源整合和下沉的考核和激励机制建立情况（定性）",
        "Incentive mechanism for pooling and sending down resources (qualitative)",
        2.5,
        DOCUMENTS,
    ),
    _a(
        6,
        DIV,
        "制定章程或协议，明确各成员单位的责、权、利关系",
        "Charter or agreements define rights and duties",
        2,
        DOCUMENTS,
    ),
    _a(
        7,
        DIV,
        "建立医疗质量同质化管理制度（定性）",
        "Quality-homogeneity system (qualitative)",
        2,
        DOCUMENTS,
    ),
    _a(
        8,
        DIV,
        "建立双向转诊标准与程序（定性）",
        "Referral standards and procedure (qualitative)",
        2,
        DOCUMENTS,
    ),
    _a(
        9,
        DIV,
        "为患者提供诊疗-康复-长护连续性服务（定性）",
        "Care → rehabilitation → long-term care continuity (qualitative)",
        2,
        DOCUMENTS_AND_PATIENTS,
    ),
    _a(
        10,
        DIV,
        "牵头单位对成员单位转诊患者提供优先接诊、优先检查、优先住院等服务（定性）",
        "Priority reception, examination and admission for referred patients (qualitative)",
        2,
        DOCUMENTS_AND_PATIENTS,
    ),
    _a(
        11,
        RES,
        "牵头单位派医务人员开展专科共建、临床带教、业务指导、教学查房、科研和项目协作等业务情况（定性）",
        "Lead staff do co-building, clinical teaching, guidance, rounds, research (qualitative)",
        5,
        DOCUMENTS_AND_SITE,
    ),
    Indicator(
        12,
        RES,
        "专科（技术）联盟远程教学开展情况（每年不少于 10 次）",
        "Remote teaching sessions, at least 10 a year",
        5,
        Kind.F,
        DOCUMENTS_AND_SITE,
        Rule.AT_LEAST,
        "sessions",
    ),
    Indicator(
        13,
        RES,
        "专科（技术）联盟远程会诊开展情况（每年不少于 15 例）",
        "Remote consultation cases, at least 15 a year",
        5,
        Kind.F,
        DOCUMENTS_AND_SITE,
        Rule.AT_LEAST,
        "cases",
    ),
    Indicator(
        14,
        EFF,
        "牵头单位向成员单位派出专业技术/管理人才的人次数增加",
        "Professional and management staff dispatched by the lead to members (person-times), rising",
        3,
        Kind.N,
        DOCUMENTS_AND_SITE,
        Rule.RISING,
        "person-times",
    ),
    Indicator(
        15,
        EFF,
        "成员单位专科诊疗量逐步增长",
        "Members' specialty patient volume (outpatient visits + admissions), rising",
        3,
        Kind.N,
        DATA,
        Rule.RISING,
        "visits and admissions",
    ),
    Indicator(
        16,
        EFF,
        "成员单位上转疑难危重症病人例数增加",
        "Members' up-referrals of complex or critical patients to the lead, rising",
        3,
        Kind.F,
        DATA,
        Rule.RISING,
        "referrals",
    ),
    Indicator(
        17,
        EFF,
        "牵头单位向成员单位下转病人例数增加",
        "Lead's down-referrals to members, rising",
        3,
        Kind.F,
        DATA,
        Rule.RISING,
        "referrals",
    ),
    Indicator(
        18,
        EFF,
        "牵头单位帮助成员单位开展新技术、新项目的数量增加",
        "New techniques and projects the lead helps members start, rising",
        4,
        Kind.N,
        DOCUMENTS_AND_SITE,
        Rule.RISING,
        "techniques and projects",
    ),
    _a(
        19,
        EFF,
        "牵头医院帮助成员单位开展专科建设的情况（定性）",
        "Specialty building helped by the lead (qualitative)",
        4,
        DOCUMENTS_AND_SITE,
    ),
    Indicator(
        20,
        EFF,
        "成员单位专科到牵头单位学习进修的人次数增加",
        "Member staff starting further training (进修) at the lead, rising",
        4,
        Kind.F,
        DOCUMENTS_AND_SITE,
        Rule.RISING,
        "person-times",
    ),
    _a(
        21,
        EFF,
        "帮助成员单位提升管理能力情况（定性）",
        "Management capability helped (qualitative)",
        4,
        DOCUMENTS_AND_SITE,
    ),
    Indicator(
        22,
        EFF,
        "牵头单位专科疑难危重症患者比例提升",
        "Lead's share of complex or critical cases among its specialty discharges, rising",
        3,
        Kind.N,
        DATA,
        Rule.RISING,
        "%",
    ),
    Indicator(
        23,
        EFF,
        "牵头单位专科三、四级手术占比增加",
        "Lead's share of grade 3/4 operations, rising",
        3,
        Kind.N,
        DATA,
        Rule.RISING,
        "%",
    ),
    Indicator(
        24,
        EFF,
        "成员单位专科业务量增加",
        "Members' specialty business volume (operations), rising",
        3,
        Kind.N,
        DOCUMENTS_AND_SITE,
        Rule.RISING,
        "operations",
    ),
    Indicator(
        25,
        EFF,
        "成员单位专科质控考核成绩合格",
        "Members pass the provincial specialty QC centre's assessment",
        10,
        Kind.E,
        "查看省级专科质控中心考核成绩",
        Rule.QC_PASSED,
        "% of members",
    ),
    Indicator(
        26,
        EFF,
        "牵头单位平均住院日减少",
        "Lead's average length of stay, falling",
        3,
        Kind.N,
        DATA,
        Rule.FALLING,
        "days",
    ),
    Indicator(
        27,
        EFF,
        "成员单位床位使用率增加",
        "Members' bed occupancy, rising",
        3,
        Kind.N,
        DATA,
        Rule.RISING,
        "%",
    ),
    Indicator(
        28,
        EFF,
        "牵头单位和成员单位患者病人次均费用合理",
        "Cost per outpatient visit and per inpatient stay reasonable (growth within a limit)",
        3,
        Kind.N,
        DATA,
        Rule.COST_REASONABLE,
        "yuan per visit",
    ),
    _a(
        29,
        SUS,
        "专科（技术）联盟内建立利益共享机制（定性）",
        "Benefit-sharing mechanism (qualitative)",
        3,
        DOCUMENTS,
    ),
    Indicator(
        30,
        SUS,
        "患者满意度，牵头、成员单位专科门诊患者满意度＞80%,牵头、成员单位专科住院患者满意度＞90%",
        "Patient satisfaction: specialty outpatients above 80 %, inpatients above 90 %",
        3,
        Kind.N,
        "查看满意度调查结果",
        Rule.SATISFACTION,
        "% outpatients satisfied",
    ),
    Indicator(
        31,
        SUS,
        "医务人员满意度＞70%",
        "Staff satisfaction above 70 %",
        3,
        Kind.N,
        "查看满意度调查结果",
        Rule.SATISFACTION,
        "% staff satisfied",
    ),
)

BY_NUMBER = {i.number: i for i in CATALOGUE}
