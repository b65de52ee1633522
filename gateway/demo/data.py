"""The demo alliance: synthetic hospitals and people, modelled on seeds 000 (the charter of the
orthopaedic-trauma alliance led by 河南省洛阳正骨医院) and 004 (a city orthopaedic alliance's
members and council). Dates are relative to today so the agreement statuses stay meaningful."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Required, TypedDict, Unpack

from adapters.registry.records import AllianceRecord, HospitalRecord
from resolvers import clock
from resolvers.agreements import term_end
from resolvers.credit_code import check_character

ALLIANCE_ID = "lyzg-orthopaedics"
LEAD = "LYZG"

_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _organisation_code(serial: int) -> str:
    """A GB 11714 organisation code: 8 characters and a check character."""
    body = f"{serial:08d}"
    total = sum(
        _ORG_ALPHABET.index(c) * w for c, w in zip(body, [3, 7, 9, 10, 5, 8, 4, 2], strict=True)
    )
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def credit_code(registration: str, division: str, serial: int) -> str:
    first17 = registration + division + _organisation_code(serial)
    return first17 + check_character(first17)


class _HospitalDetails(TypedDict, total=False):
    """HospitalRecord's fields that _hospital does not derive."""

    grade: Required[str]
    ownership: Required[str]
    type: Required[str]
    contact_name: Required[str]
    contact_phone: Required[str]
    specialty_beds: int
    address: str | None
    licence_number: str | None
    licence_valid_until: date | None
    authorised_beds: int | None
    open_beds: int | None
    staff_total: int | None
    medical_staff: int | None
    management_staff: int | None
    specialty_ward: str | None


def _hospital(
    code: str,
    name: str,
    registration: str,
    division: str,
    serial: int,
    **kw: Unpack[_HospitalDetails],
) -> HospitalRecord:
    return HospitalRecord(
        code=code,
        name=name,
        credit_code=credit_code(registration, division, serial),
        division_code=division,
        **kw,
    )


# 12 = a public institution (事业单位) registered by the staffing authority; 52 = a private
# non-profit (民办非企业单位) registered by civil affairs.
HOSPITALS: list[HospitalRecord] = [
    _hospital(
        "LYZG",
        "河南省洛阳正骨医院（河南省骨科医院）",
        "12",
        "410300",
        41700101,
        grade="GRADE_3A",
        ownership="PUBLIC",
        type="TCM",
        specialty_ward="骨伤科",
        specialty_beds=1200,
        authorised_beds=2000,
        open_beds=2260,
        staff_total=2600,
        medical_staff=2150,
        management_staff=180,
        contact_name="周敏",
        contact_phone="0379-63546000",
        licence_number="41030000000001",
        address="河南省洛阳市瀍河回族区启明南路82号",
    ),
    _hospital(
        "LHGK",
        "漯河市骨科医院（漯河医专第二附属医院）",
        "12",
        "411100",
        41700102,
        grade="GRADE_3B",
        ownership="PUBLIC",
        type="SPECIALTY",
        specialty_ward="骨科",
        specialty_beds=300,
        authorised_beds=600,
        open_beds=650,
        staff_total=900,
        medical_staff=760,
        management_staff=60,
        contact_name="陈立",
        contact_phone="0395-3120000",
    ),
    _hospital(
        "LHZX",
        "漯河市中心医院",
        "12",
        "411100",
        41700103,
        grade="GRADE_3A",
        ownership="PUBLIC",
        type="GENERAL",
        specialty_ward="创伤骨科",
        specialty_beds=120,
        authorised_beds=1500,
        open_beds=1800,
        staff_total=2300,
        medical_staff=1900,
        management_staff=150,
        contact_name="王静",
        contact_phone="0395-3356000",
    ),
    _hospital(
        "LHZY",
        "漯河市中医院",
        "12",
        "411100",
        41700104,
        grade="GRADE_2A",
        ownership="PUBLIC",
        type="TCM",
        specialty_ward="骨伤科",
        specialty_beds=60,
        authorised_beds=500,
        open_beds=520,
        staff_total=680,
        medical_staff=560,
        management_staff=50,
        contact_name="刘洋",
        contact_phone="0395-2129000",
    ),
    _hospital(
        "LHRM2",
        "漯河市第二人民医院",
        "12",
        "411102",
        41700105,
        grade="GRADE_2B",
        ownership="PUBLIC",
        type="GENERAL",
        specialty_ward="骨科",
        specialty_beds=40,
        authorised_beds=300,
        open_beds=320,
        staff_total=420,
        medical_staff=350,
        management_staff=35,
        contact_name="赵磊",
        contact_phone="0395-2321000",
    ),
    _hospital(
        "LHRM6",
        "漯河市第六人民医院",
        "12",
        "411104",
        41700106,
        grade="GRADE_2A",
        ownership="PUBLIC",
        type="GENERAL",
        specialty_ward="骨科",
        specialty_beds=45,
        authorised_beds=350,
        open_beds=380,
        staff_total=460,
        medical_staff=390,
        management_staff=40,
        contact_name="孙莉",
        contact_phone="0395-6180000",
    ),
    _hospital(
        "LHRH",
        "漯河仁和骨科医院",
        "52",
        "411103",
        41700107,
        grade="GRADE_2A",
        ownership="PRIVATE",
        type="SPECIALTY",
        specialty_ward="骨科",
        specialty_beds=80,
        authorised_beds=150,
        open_beds=160,
        staff_total=210,
        medical_staff=180,
        management_staff=20,
        contact_name="吴强",
        contact_phone="0395-5960000",
    ),
    _hospital(
        "LHYZ3",
        "漯河医专第三附属医院",
        "12",
        "411100",
        41700108,
        grade="GRADE_2A",
        ownership="PUBLIC",
        type="GENERAL",
        specialty_ward="骨科",
        specialty_beds=50,
        authorised_beds=400,
        open_beds=410,
        staff_total=500,
        medical_staff=420,
        management_staff=40,
        contact_name="郑雪",
        contact_phone="0395-3301000",
    ),
]

APPLICANT = _hospital(
    "WYRM",
    "舞阳县人民医院",
    "12",
    "411121",
    41700109,
    grade="GRADE_2A",
    ownership="PUBLIC",
    type="GENERAL",
    specialty_ward="骨科",
    specialty_beds=36,
    authorised_beds=450,
    open_beds=480,
    staff_total=560,
    medical_staff=470,
    management_staff=45,
    contact_name="冯刚",
    contact_phone="0395-7211000",
)


@dataclass(frozen=True, slots=True)
class DemoMember:
    code: str
    role: str
    joined_days_ago: int
    # Where its current agreement stands: its term and how long ago it took effect.
    term_years: int | None
    agreement_started_days_ago: int | None
    # An inclusion criterion (纳入标准) it was admitted without, and why: recorded on its
    # membership, so that the demo's own rules and its members agree.
    inclusion_exception: tuple[str, str] | None = None


# LHRH is privately run (社会办), against the demo's public_only criterion (seed 000 §14: 公立医院).
# Seed 003 asks an alliance admitting members to weigh the partnerships it already has
# (兼顾既往形成的合作关系): that is the recorded reason it was admitted.
LHRH_EXCEPTION = (
    "PUBLIC_ONLY",
    "社会办骨科专科医院，与牵头医院有多年对口帮扶合作关系；经理事会决议，兼顾既往形成的合作关系，"
    "作为例外吸纳。",
)


def demo_members(today: date) -> list[DemoMember]:
    three_years = (today - clock.add_months(today, -36)).days
    return [
        DemoMember("LYZG", "LEAD", 900, None, None),
        DemoMember("LHGK", "BACKBONE", 900, 3, 400),
        DemoMember("LHZX", "BACKBONE", 900, 3, 400),
        DemoMember("LHZY", "MEMBER", 900, 3, 200),
        # Inside the 3-month renewal window: expires in about 40 days.
        DemoMember("LHRM2", "MEMBER", three_years - 40, 3, three_years - 41),
        DemoMember("LHRM6", "MEMBER", 700, 3, 700),
        # Expired 20 days ago, awaiting re-evaluation.
        DemoMember("LHRH", "MEMBER", 1115, 3, three_years + 19, LHRH_EXCEPTION),
        DemoMember("LHYZ3", "MEMBER", 500, 3, 500),
    ]


def alliance(today: date) -> AllianceRecord:
    return AllianceRecord(
        id=ALLIANCE_ID,
        name="河南省洛阳正骨医院骨伤专科联盟",
        specialty="骨伤科（骨科、创伤）",
        level="PROVINCIAL",
        form="LOOSE",
        lead_hospital_code=LEAD,
        lead_department="骨伤科",
        discipline_leader="李建国",
        founded_on=today - timedelta(days=900),
        charter_version="试行 1.0",
        development_plan="以骨伤专科为纽带，开展远程会诊、双向转诊、进修培训与检查检验结果互认。",
        filing_status="FILED",
        filing_number="豫卫联备〔2024〕017号",
        standing="GOOD",
    )


# Seat, holder, title, hospital: 1 chair, 2 vice-chairs, 5 standing members, 1 secretary.
COUNCIL = [
    ("CHAIR", "李建国", "主任医师、学科带头人", "LYZG"),
    ("VICE_CHAIR", "陈立", "副院长", "LHGK"),
    ("VICE_CHAIR", "王海", "院长", "LHZX"),
    ("STANDING_MEMBER", "刘晓", "院长", "LHZY"),
    ("STANDING_MEMBER", "胡良", "院长", "LHRM2"),
    ("STANDING_MEMBER", "高甫", "院长", "LHRM6"),
    ("STANDING_MEMBER", "王立", "院长", "LHYZ3"),
    ("STANDING_MEMBER", "张伟", "骨科主任", "LHRH"),
    ("SECRETARY", "周敏", "联盟办公室主任", "LYZG"),
]


def agreement_dates(member: DemoMember, today: date) -> tuple[date, date] | None:
    if member.term_years is None or member.agreement_started_days_ago is None:
        return None
    start = today - timedelta(days=member.agreement_started_days_ago)
    return start, term_end(start, member.term_years)


def extra_hospitals(count: int) -> list[HospitalRecord]:
    """Synthetic members for scale tests (`demo --members N`)."""
    grades = ["GRADE_2A", "GRADE_2B", "GRADE_2A", "GRADE_3B"]
    return [
        _hospital(
            f"SYN{i:03d}",
            f"合成县医院{i:03d}",
            "12",
            "411100",
            41800000 + i,
            grade=grades[i % len(grades)],
            ownership="PUBLIC",
            type="GENERAL",
            specialty_ward="骨科",
            specialty_beds=40 + i % 30,
            contact_name="合成联络人",
            contact_phone="0395-8000000",
        )
        for i in range(1, count + 1)
    ]


# The Hubei list (鄂卫通〔2023〕56号) of validity windows, used as the demo's recognition catalogue:
# LOINC, name, days, and what a re-test would cost in fen.
RECOGNITION_CATALOGUE: list[tuple[str, str, int, int]] = [
    ("2823-3", "钾", 7, 600),
    ("2951-2", "钠", 7, 600),
    ("2075-0", "氯", 7, 600),
    ("17861-6", "钙", 7, 600),
    ("19123-9", "镁", 7, 800),
    ("2498-4", "铁", 7, 800),
    ("2500-7", "总铁结合力", 7, 1200),
    ("2777-1", "磷", 7, 600),
    ("14334-7", "锂", 7, 1500),
    ("2885-2", "总蛋白", 30, 500),
    ("1751-7", "白蛋白", 30, 500),
    ("2276-4", "铁蛋白", 30, 3500),
    ("2345-7", "葡萄糖", 30, 500),
    ("2093-3", "总胆固醇", 30, 600),
    ("2571-8", "甘油三酯", 30, 600),
    ("2085-9", "高密度脂蛋白胆固醇", 30, 800),
    ("13457-7", "低密度脂蛋白胆固醇", 30, 800),
    ("1869-7", "载脂蛋白A1", 30, 1200),
    ("1884-6", "载脂蛋白B", 30, 1200),
    ("1975-2", "总胆红素", 30, 500),
    ("1968-7", "直接胆红素", 30, 500),
    ("4548-4", "糖化血红蛋白", 60, 4000),
]

# Provincial price per consultation case, in fen (demo figures).
CONSULTATION_FEES_FEN = {
    "REMOTE_CONSULTATION": 30000,
    "MDT": 50000,
    "REMOTE_IMAGING": 15000,
    "REMOTE_ECG": 5000,
    "REMOTE_PATHOLOGY": 20000,
    "ON_SITE": 80000,
}
