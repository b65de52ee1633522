"""Two years of synthetic activity at the demo hospitals' exchange databases (前置机): referrals,
tele-consultations and their reports, training events, placements (进修), examination and test
results and the labs' quality-control standing; and the figures of the contract's part 2 (monthly
specialty volumes, satisfaction surveys, capacity building: gateway.demo.figures).

The same vocabularies make single new rows for `demo --simulate-activity` (gateway.demo.simulate):
what a hospital's own systems write while the demo serves.

Everything is made up and deterministic (one `random.Random` per call). Patients appear only as
the alliance pseudonym with sex and age: no names and no resident IDs reach any row. Rows are keyed
by the logical column names of `adapters.exchange.columns`; loading goes through
`adapters.exchange.bulk`, under the hospital's own column names where it has them."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import aiomysql
import asyncpg

from adapters.exchange import bulk
from adapters.exchange.columns import TABLES, ColumnMap
from adapters.mysql import bulk as mysql_bulk
from gateway.demo import data as demo_data
from gateway.demo import figures
from resolvers import clock
from resolvers.patients import check_character, pseudonym

T = TypeVar("T")
Rows = list[dict[str, Any]]

CST = timezone(timedelta(hours=8))
DAYS = 730  # two years of activity, ending yesterday (nothing is dated in the future)

GRADES = ("UNGRADED", "GRADE_1", "GRADE_2B", "GRADE_2A", "GRADE_3B", "GRADE_3A")
ROLES = ("MEMBER", "BACKBONE", "LEAD")

# Tables in foreign-key order, as seed_activity loads them.
LOAD_ORDER = (
    "referral",
    "consultation",
    "consultation_report",
    "training_event",
    "training_participation",
    "placement",
    "test_result",
    "quality_control",
    "recognition_decision",
    *figures.TABLES,
)


@dataclass(frozen=True)
class SyntheticHospital:
    code: str
    grade: str  # GRADE_3A | GRADE_3B | GRADE_2A | GRADE_2B | GRADE_1 | UNGRADED
    role: str  # LEAD | BACKBONE | MEMBER


@dataclass(frozen=True)
class SyntheticPatient:
    resident_id: str  # synthetic, valid GB 11643; never written to any row
    sex: str  # MALE | FEMALE, the parity of the 17th digit
    birth_year: int
    hospitals: tuple[str, ...]  # where the patient has results and records; the first is home

    @property
    def birth_date(self) -> date:
        r = self.resident_id
        return date(int(r[6:10]), int(r[10:12]), int(r[12:14]))


def level(hospital: SyntheticHospital) -> tuple[int, int]:
    """The referral hierarchy: grade first, then role (the lead above a backbone of its grade).
    An UP referral goes to a strictly higher level, a DOWN referral to a strictly lower one."""
    return GRADES.index(hospital.grade), ROLES.index(hospital.role)


def demo_hospitals(today: date | None = None) -> list[SyntheticHospital]:
    """The demo alliance's hospitals (gateway.demo.data) with their grades and roles."""
    roles = {m.code: m.role for m in demo_data.demo_members(today or clock.today())}
    return [
        SyntheticHospital(h.code, h.grade, roles[h.code])
        for h in demo_data.HOSPITALS
        if h.code in roles
    ]


# The private hospital keeps its own (pinyin-initial) column names for several columns.
RENAMED_COLUMNS: dict[str, dict[str, dict[str, str]]] = {
    "LYZG": {},
    "LHGK": {},
    "LHZX": {},
    "LHZY": {},
    "LHRM2": {},
    "LHRM6": {},
    "LHRH": {
        "referral": {
            "patient_sex": "hzxb",
            "patient_age": "hznl",
            "diagnosis_code": "zdbm",
            "diagnosis_name": "zdmc",
            "created_at": "cjsj",
        },
        "test_result": {
            "item_code": "xmdm",
            "item_name": "xmmc",
            "reference_range": "ckfw",
            "performed_at": "jcsj",
        },
    },
    "LHYZ3": {},
}

# Items whose quality control is not valid today at a hospital: EXPIRED (the last certificate
# ended some weeks ago) or MISSING (never taken part). Every other LOINC has valid QC.
QC_GAPS: dict[str, dict[str, str]] = {
    "LHRH": {"4548-4": "MISSING", "2276-4": "EXPIRED", "17861-6": "EXPIRED", "24968-0": "MISSING"},
    "LHRM2": {"4548-4": "EXPIRED", "13457-7": "MISSING", "14798-3": "EXPIRED"},
}


# -- small helpers ---------------------------------------------------------------------------


def _weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _stable(text: str) -> int:
    """A small number from a string that, unlike hash(), is the same in every process."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text))


def _days_ago(
    rng: random.Random, growth: float = 0.5, recent_share: float = 0.0, recent_days: int = 14
) -> int:
    """1..DAYS days ago, denser towards today: activity grows about 20% year on year. A
    `recent_share` falls in the last `recent_days`, so some work is still in flight."""
    if rng.random() < recent_share:
        return rng.randint(1, recent_days)
    u = rng.random()
    t = (-1 + math.sqrt(1 + 2 * growth * (1 + growth / 2) * u)) / growth  # 0 = oldest
    return 1 + min(DAYS - 1, int((1 - t) * DAYS))


def _at(day: date, rng: random.Random, first_hour: int = 8, last_hour: int = 18) -> datetime:
    minute = rng.randrange(first_hour * 60, last_hour * 60)
    return datetime.combine(day, time(minute // 60, minute % 60), CST)


def _hours(hours: float) -> timedelta:
    return timedelta(seconds=round(hours * 3600))


def _age(patient: SyntheticPatient, on: date) -> int:
    born = patient.birth_date
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
    "贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟段雷"
)
_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玉兰萍国红志文斌辉鹏宇浩凯晨欣怡佳琳雪"
    "梅海燕晓东亮林峰波宁丹颖璐博昊然轩涵睿嘉航宏庆春瑞阳飞鑫帅婷倩楠振毅克俊豪"
)


def _name(rng: random.Random) -> str:
    given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(_SURNAMES) + given


_SHORT_NAMES = {h.code: h.name.split("（", 1)[0] for h in demo_data.HOSPITALS}


def _short_name(code: str) -> str:
    return _SHORT_NAMES.get(code, code)


@dataclass(frozen=True)
class _Expert:
    name: str
    title: str


@cache
def _experts(code: str, size: int = 12) -> tuple[_Expert, ...]:
    """A hospital's senior doctors; the same names in every hospital's rows."""
    rng = random.Random(f"experts:{code}")
    titles = (("主任医师", 0.45), ("副主任医师", 0.4), ("主治医师", 0.15))
    experts = [_Expert(_name(rng), _weighted(rng, titles)) for _ in range(size)]
    if code == demo_data.LEAD:
        chair = next(c for c in demo_data.COUNCIL if c[0] == "CHAIR")
        experts[0] = _Expert(chair[1], "主任医师")
    return tuple(experts)


# -- patients --------------------------------------------------------------------------------

_LUOHE = ("411100", "411102", "411103", "411104", "411121", "411122")  # 漯河市及其区县
_LUOYANG = ("410300", "410302", "410303", "410305", "410311", "410322")  # 洛阳市及其区县
_HENAN = ("410100", "411000", "411700", "410400")  # 郑州、许昌、驻马店、平顶山


def _resident_id(rng: random.Random, sex: str, division: str, seen: set[str]) -> str:
    while True:
        year = min(2015, int(rng.triangular(1940, 2016, 1958)))
        length = 366 if year % 4 == 0 else 365  # 1940..2015: no century years
        born = date(year, 1, 1) + timedelta(days=rng.randrange(length))
        sequence = rng.randrange(1, 500) * 2 + (1 if sex == "MALE" else 0)  # odd = male
        first17 = f"{division}{born:%Y%m%d}{sequence:03d}"
        resident_id = first17 + check_character(first17)
        if resident_id not in seen:
            seen.add(resident_id)
            return resident_id


def synthetic_patients(
    hospitals: Sequence[SyntheticHospital], count: int, rng: random.Random
) -> list[SyntheticPatient]:
    """`count` patients. Most are at home at a member; 40% were also seen at a second hospital
    (for a member's patient the lead or a backbone), some of those at a third."""
    if not hospitals:
        raise ValueError("no hospitals")
    codes = [h.code for h in hospitals]
    members = [h.code for h in hospitals if h.role == "MEMBER"]
    backbones = [h.code for h in hospitals if h.role == "BACKBONE"]
    leads = [h.code for h in hospitals if h.role == "LEAD"]
    higher = [(c, 0.55 / len(leads)) for c in leads] + [
        (c, 0.45 / len(backbones)) for c in backbones
    ]
    home_choices = [(c, 0.75 / len(members)) for c in members] + [
        (c, 0.15 / len(backbones)) for c in backbones
    ]
    home_choices += [(c, 0.10 / len(leads)) for c in leads]
    multi = set(rng.sample(range(count), math.ceil(count * 0.4))) if len(codes) > 1 else set()
    seen: set[str] = set()
    patients: list[SyntheticPatient] = []
    for i in range(count):
        home = _weighted(rng, home_choices) if home_choices else rng.choice(codes)
        visited = [home]
        if i in multi:
            if home in members and higher:
                second = _weighted(rng, higher)
            elif home in backbones and leads and rng.random() < 0.6:
                second = rng.choice(leads)
            elif members and rng.random() < 0.75:
                second = rng.choice([c for c in members if c != home] or codes)
            else:
                second = rng.choice(codes)
            if second == home:
                second = rng.choice([c for c in codes if c != home])
            visited.append(second)
            rest = [c for c in codes if c not in visited]
            if rest and rng.random() < 0.2:
                visited.append(rng.choice(rest))
        if home in leads:
            divisions = _LUOYANG if rng.random() < 0.7 else _HENAN
        else:
            divisions = _LUOHE if rng.random() < 0.9 else _HENAN
        sex = "FEMALE" if rng.random() < 0.52 else "MALE"
        resident_id = _resident_id(rng, sex, rng.choice(divisions), seen)
        patients.append(SyntheticPatient(resident_id, sex, int(resident_id[6:10]), tuple(visited)))
    return patients


def sample_patients(patients: Sequence[SyntheticPatient]) -> list[dict[str, Any]]:
    """Up to 20 patients with results at two or more hospitals, taking homes in turn so every
    member has some: resident IDs to try in the demo."""
    by_home: dict[str, list[SyntheticPatient]] = {}
    for p in patients:
        if len(p.hospitals) >= 2:
            by_home.setdefault(p.hospitals[0], []).append(p)
    chosen: list[SyntheticPatient] = []
    queues = [list(v) for _, v in sorted(by_home.items())]
    while len(chosen) < 20 and any(queues):
        for queue in queues:
            if queue and len(chosen) < 20:
                chosen.append(queue.pop(0))
    return [{"resident_id": p.resident_id, "members": list(p.hospitals)} for p in chosen]


# -- clinical catalogue ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Diagnosis:
    code: str
    name: str
    min_age: int
    max_age: int
    weight: float
    family: str  # FRACTURE | JOINT | SPINE | OSTEOPOROSIS | SPORTS
    site: str
    procedure: str


_DIAGNOSES = (
    _Diagnosis("S72.001", "股骨颈骨折", 50, 110, 10, "FRACTURE", "髋部", "人工股骨头置换术"),
    _Diagnosis(
        "S72.101",
        "股骨粗隆间骨折",
        55,
        110,
        7,
        "FRACTURE",
        "髋部",
        "股骨近端防旋髓内钉(PFNA)内固定术",
    ),
    _Diagnosis("S82.201", "胫骨干骨折", 8, 85, 6, "FRACTURE", "小腿", "胫骨髓内钉内固定术"),
    _Diagnosis("M17.9", "膝关节病", 45, 110, 10, "JOINT", "膝关节", "人工全膝关节置换术"),
    _Diagnosis("M51.202", "腰椎间盘突出", 20, 85, 10, "SPINE", "腰部", "经皮椎间孔镜下髓核摘除术"),
    _Diagnosis("S32.001", "腰椎骨折", 18, 110, 6, "FRACTURE", "腰背部", "后路椎弓根螺钉内固定术"),
    _Diagnosis("M16.9", "髋关节病", 45, 110, 6, "JOINT", "髋关节", "人工全髋关节置换术"),
    _Diagnosis(
        "S42.201", "肱骨近端骨折", 40, 110, 5, "FRACTURE", "肩部", "锁定钢板切开复位内固定术"
    ),
    _Diagnosis(
        "M80.9",
        "骨质疏松伴病理性骨折",
        55,
        110,
        7,
        "OSTEOPOROSIS",
        "腰背部",
        "经皮椎体后凸成形术(PKP)",
    ),
    _Diagnosis("S52.5", "桡骨下端骨折", 5, 110, 5, "FRACTURE", "腕部", "手法复位小夹板外固定"),
    _Diagnosis("S82.6", "外踝骨折", 12, 90, 4, "FRACTURE", "踝部", "切开复位钢板内固定术"),
    _Diagnosis("S42.4", "肱骨下端骨折", 3, 15, 4, "FRACTURE", "肘部", "闭合复位克氏针内固定术"),
    _Diagnosis("M48.0", "椎管狭窄", 50, 110, 5, "SPINE", "腰部", "腰椎管减压植骨融合内固定术"),
    _Diagnosis("S83.2", "半月板撕裂", 15, 70, 4, "SPORTS", "膝关节", "关节镜下半月板成形术"),
    _Diagnosis("M87.0", "股骨头缺血性坏死", 25, 80, 4, "JOINT", "髋关节", "人工全髋关节置换术"),
    _Diagnosis("M75.1", "肩袖损伤", 35, 85, 3, "SPORTS", "肩关节", "关节镜下肩袖修补术"),
)

_DEPARTMENT = {
    "FRACTURE": "创伤骨科",
    "JOINT": "关节外科",
    "SPINE": "脊柱外科",
    "OSTEOPOROSIS": "脊柱外科",
    "SPORTS": "运动医学科",
}

_REHAB = {
    "FRACTURE": "患肢抬高，循序渐进进行肌力及关节活动度锻炼，按计划逐步负重；术后1、2、3个月复查X线了解骨折愈合情况。",
    "JOINT": "助行器辅助下地，6周内避免关节过度屈曲及盘腿下蹲，加强股四头肌等长收缩训练；术后2周拆线，1、3、6个月门诊复查。",
    "SPINE": "佩戴腰围3个月，避免弯腰负重及久坐，循序渐进进行腰背肌功能锻炼；如下肢麻木加重及时复诊。",
    "OSTEOPOROSIS": "规范抗骨质疏松治疗（钙剂、维生素D、抗骨吸收药物），预防跌倒；3个月后复查骨密度及胸腰椎X线。",
    "SPORTS": "支具保护下进行康复训练，4周内避免剧烈运动，6周后逐步恢复日常活动；术后1、3个月复查。",
}


def _fits(patient: SyntheticPatient, on: date) -> list[_Diagnosis]:
    age = _age(patient, on)
    return [d for d in _DIAGNOSES if d.min_age <= age <= d.max_age] or list(_DIAGNOSES)


def _primary_diagnosis(patient: SyntheticPatient, pseudo: str, today: date) -> _Diagnosis:
    """The patient's main complaint, the same at every hospital."""
    fits = _fits(patient, today)
    return random.Random(f"dx:{pseudo}").choices(fits, weights=[d.weight for d in fits])[0]


def _condition(rng: random.Random, dx: _Diagnosis, age: int, sex: str) -> str:
    who = f"{age}岁{'男' if sex == 'MALE' else '女'}性"
    if dx.family == "FRACTURE":
        cause = rng.choice(("跌倒", "车祸", "高处坠落", "骑电动车摔伤", "重物砸伤"))
        return (
            f"{who}，{cause}致{dx.site}疼痛、肿胀、活动受限{rng.randint(2, 48)}小时，"
            f"影像学检查提示{dx.name}。"
        )
    if dx.family == "SPINE":
        return (
            f"{who}，腰痛伴下肢放射痛{rng.randint(2, 36)}个月，加重{rng.randint(1, 8)}周，"
            f"直腿抬高试验阳性，影像学检查提示{dx.name}，保守治疗效果欠佳。"
        )
    if dx.family == "OSTEOPOROSIS":
        return (
            f"{who}，轻微外力后腰背部疼痛{rng.randint(3, 30)}天，翻身困难，"
            f"骨密度T值-{rng.randint(25, 42) / 10}，影像学检查提示{dx.name}。"
        )
    if dx.family == "SPORTS":
        cause = rng.choice(("运动时扭伤", "打篮球时受伤", "上下楼梯时扭伤", "搬重物时受伤"))
        return (
            f"{who}，{cause}后{dx.site}疼痛、活动受限{rng.randint(1, 12)}周，"
            f"查体及影像学检查提示{dx.name}。"
        )
    return (
        f"{who}，{dx.site}疼痛伴活动受限{rng.randint(1, 10)}年，加重{rng.randint(1, 6)}个月，"
        f"影像学检查提示{dx.name}，保守治疗效果欠佳。"
    )


# -- referrals -------------------------------------------------------------------------------

_UP_REASONS = {
    "FRACTURE": (
        "骨折移位明显，需手术内固定治疗",
        "合并多发伤，本院救治条件有限",
        "需上级医院手术治疗",
    ),
    "JOINT": ("需行人工关节置换术，本院尚未开展", "病情复杂，需上级医院专科治疗"),
    "SPINE": ("保守治疗无效，需脊柱微创手术", "神经症状进行性加重，需手术减压"),
    "OSTEOPOROSIS": ("需行椎体成形术", "合并多种基础疾病，围手术期风险高"),
    "SPORTS": ("需行关节镜手术", "本院无关节镜设备"),
}
_DOWN_REASONS = (
    "术后病情稳定，转回基层医院继续康复治疗",
    "已度过急性期，转回当地医院康复及随访",
    "手术顺利，患者要求就近康复",
)
_REJECT_REASONS = (
    "专科床位已满，建议转往其他骨干医院",
    "经评估不符合上转指征，建议在本院继续治疗",
    "接收科室暂无法满足该患者的康复需求",
)
_CANCEL_REASONS = ("患者及家属拒绝转诊", "病情好转，无需转诊", "患者自行选择其他医院就诊")
_NOTES = (
    "有高血压病史，长期口服降压药",
    "有2型糖尿病病史",
    "家属陪同，已告知转诊风险",
    "已电话联系接收科室",
    "携带影像资料光盘",
    "长期口服抗凝药物，已停药",
)


@dataclass
class _Context:
    hospital: SyntheticHospital
    by_code: dict[str, SyntheticHospital]
    patients: list[SyntheticPatient]  # those with records at this hospital
    pseudonyms: dict[str, str]  # resident ID -> pseudonym, in memory only
    today: date
    rng: random.Random
    scale: float
    end: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.end = datetime.combine(self.today, time(0), CST)

    def scaled(self, low: int, high: int) -> int:
        return round(self.rng.randint(low, high) * self.scale)

    def targets(self, up: bool) -> list[SyntheticHospital]:
        return partners(self.hospital, self.by_code.values(), up)

    def patient_for(self, targets: Sequence[SyntheticHospital]) -> tuple[SyntheticPatient, str]:
        return patient_for(self.rng, self.patients, targets)


def partners(
    hospital: SyntheticHospital, hospitals: Iterable[SyntheticHospital], up: bool
) -> list[SyntheticHospital]:
    """Where `hospital` sends work: up the hierarchy (the lead and backbones before other
    members), or down it."""
    mine = level(hospital)
    if up:
        higher = [h for h in hospitals if level(h) > mine]
        return [h for h in higher if h.role != "MEMBER"] or higher
    return [h for h in hospitals if level(h) < mine]


def patient_for(
    rng: random.Random,
    patients: Sequence[SyntheticPatient],
    targets: Sequence[SyntheticHospital],
) -> tuple[SyntheticPatient, str]:
    """One of a hospital's `patients` and where to send them: mostly one of the target
    hospitals where the patient also has records."""
    codes = {h.code for h in targets}
    linked = [p for p in patients if codes.intersection(p.hospitals)]
    if linked and rng.random() < 0.8:
        patient = rng.choice(linked)
        return patient, rng.choice([c for c in patient.hospitals if c in codes])
    weights = [
        (h.code, 3.0 if h.role == "LEAD" else 1.0 if h.role == "MEMBER" else 2.0) for h in targets
    ]
    return rng.choice(patients), _weighted(rng, weights)


def _referrals(ctx: _Context) -> Rows:
    rng, me = ctx.rng, ctx.hospital
    up, down = ctx.targets(True), ctx.targets(False)
    if not ctx.patients or not (up or down):
        return []
    count, up_share = {
        "MEMBER": (ctx.scaled(220, 450), 1.0),
        "BACKBONE": (ctx.scaled(250, 400), 0.45),
        "LEAD": (ctx.scaled(270, 330), 0.0),
    }[me.role]
    if not down:
        up_share = 1.0
    elif not up:
        up_share = 0.0
    rows: Rows = []
    for _ in range(count):
        going_up = rng.random() < up_share
        patient, to = ctx.patient_for(up if going_up else down)
        pseudo = ctx.pseudonyms[patient.resident_id]
        days_ago = _days_ago(rng, recent_share=0.06, recent_days=14)
        day = ctx.today - timedelta(days=days_ago)
        created = _at(day, rng, 0, 24) if rng.random() < 0.15 else _at(day, rng)
        age = _age(patient, day)
        dx = _referral_diagnosis(rng, patient, pseudo, day, ctx.today)
        green, urgency = _urgency(rng, going_up)
        status = _weighted(rng, _referral_statuses(days_ago))
        accepted = created + _hours(rng.uniform(0.1, 0.5) if green else rng.uniform(0.5, 20))
        arrived = accepted + _hours(rng.uniform(0.5, 3) if green else rng.uniform(3, 72))
        stay = rng.uniform(4, 18) if going_up else rng.uniform(7, 30)
        completed = arrived + _hours(24 * stay)
        # Nothing happens after the end of yesterday: a later step has not happened yet.
        if status == "COMPLETED" and completed >= ctx.end:
            status = "ARRIVED"
        if status == "ARRIVED" and arrived >= ctx.end:
            status = "ACCEPTED"
        if status in ("ACCEPTED", "REJECTED", "CANCELLED") and accepted >= ctx.end:
            status = "INITIATED"
        last = {
            "INITIATED": created,
            "ACCEPTED": accepted,
            "REJECTED": accepted,
            "CANCELLED": accepted,
            "ARRIVED": arrived,
            "COMPLETED": completed,
        }[status]
        reason_pool = _UP_REASONS[dx.family] if going_up else _DOWN_REASONS
        row: dict[str, Any] = {
            "id": 0,
            "referral_no": "",
            "direction": "UP" if going_up else "DOWN",
            "from_hospital": me.code,
            "from_department": _from_department(rng, dx, going_up, urgency),
            "to_hospital": to,
            "to_department": _to_department(rng, dx, going_up),
            "patient_pseudonym": pseudo,
            "patient_sex": patient.sex,
            "patient_age": age,
            "diagnosis_code": dx.code,
            "diagnosis_name": dx.name,
            "reason": rng.choice(reason_pool),
            "condition_summary": _condition(rng, dx, age, patient.sex),
            "notes": rng.choice(_NOTES) if rng.random() < 0.3 else None,
            "urgency": urgency,
            "green_channel": green,
            "status": status,
            "status_reason": (
                rng.choice(_REJECT_REASONS)
                if status == "REJECTED"
                else rng.choice(_CANCEL_REASONS)
                if status == "CANCELLED"
                else None
            ),
            "requested_date": day
            + timedelta(days=0 if urgency != "ROUTINE" else rng.randint(0, 3)),
            "arrived_at": arrived if status in ("ARRIVED", "COMPLETED") else None,
            "completed_at": completed if status == "COMPLETED" else None,
            "treatment_result": None,
            "discharge_summary": None,
            "rehab_advice": None,
            "idempotency_key": None,
            "created_by": f"{me.code}-D{rng.randint(1, 60):03d}",
            "created_at": created,
            "updated_at": last,
            "version": 1,
        }
        if not going_up:
            # A downward referral carries the discharge documents of the sending hospital.
            row.update(_discharge_documents(rng, dx, day))
        rows.append(row)
    rows.sort(key=lambda r: r["created_at"])
    per_year: dict[int, int] = {}
    for i, row in enumerate(rows, start=1):
        year = row["created_at"].year
        per_year[year] = per_year.get(year, 0) + 1
        row["id"] = i
        row["referral_no"] = f"{me.code}-R{year}{per_year[year]:05d}"
    return rows


def _urgency(rng: random.Random, going_up: bool) -> tuple[bool, str]:
    """Green channel (绿色通道) and urgency: only an upward referral is ever urgent."""
    green = going_up and rng.random() < 0.10
    if green:
        return green, rng.choice(("URGENT", "EMERGENCY"))
    urgency = _weighted(rng, (("ROUTINE", 0.8), ("URGENT", 0.17), ("EMERGENCY", 0.03)))
    return green, urgency if going_up else "ROUTINE"


def _from_department(rng: random.Random, dx: _Diagnosis, going_up: bool, urgency: str) -> str:
    if urgency == "EMERGENCY":
        return "急诊科"
    return _DEPARTMENT[dx.family] if not going_up else rng.choice(("骨科", "骨伤科"))


def _to_department(rng: random.Random, dx: _Diagnosis, going_up: bool) -> str:
    return _DEPARTMENT[dx.family] if going_up else rng.choice(("骨科", "康复医学科", "骨伤科"))


def _referral_diagnosis(
    rng: random.Random, patient: SyntheticPatient, pseudo: str, day: date, today: date
) -> _Diagnosis:
    """Mostly the patient's main complaint, sometimes another that fits their age."""
    primary = _primary_diagnosis(patient, pseudo, today)
    fits = _fits(patient, day)
    return primary if rng.random() < 0.8 else rng.choices(fits, [d.weight for d in fits])[0]


def _discharge_documents(rng: random.Random, dx: _Diagnosis, day: date) -> dict[str, str]:
    """What a hospital hands on with a patient it discharged on `day`."""
    admitted = day - timedelta(days=rng.randint(6, 20))
    return {
        "treatment_result": rng.choice(("治愈", "好转", "好转")) + f"，行{dx.procedure}",
        "discharge_summary": (
            f"患者因“{dx.name}”于{admitted:%Y年%m月%d日}入院，完善相关检查后行{dx.procedure}，"
            "术后予预防感染、抗凝、镇痛及早期功能锻炼等治疗，切口愈合良好，"
            f"于{day:%Y年%m月%d日}出院。"
        ),
        "rehab_advice": _REHAB[dx.family],
    }


def _referral_statuses(days_ago: int) -> tuple[tuple[str, float], ...]:
    if days_ago <= 3:
        return (
            ("INITIATED", 0.55),
            ("ACCEPTED", 0.3),
            ("ARRIVED", 0.07),
            ("REJECTED", 0.04),
            ("CANCELLED", 0.04),
        )
    if days_ago <= 14:
        return (
            ("INITIATED", 0.08),
            ("ACCEPTED", 0.22),
            ("ARRIVED", 0.35),
            ("COMPLETED", 0.2),
            ("REJECTED", 0.08),
            ("CANCELLED", 0.07),
        )
    if days_ago <= 45:
        return (("ARRIVED", 0.12), ("COMPLETED", 0.74), ("REJECTED", 0.07), ("CANCELLED", 0.07))
    return (("COMPLETED", 0.87), ("REJECTED", 0.07), ("CANCELLED", 0.06))


# -- consultations ---------------------------------------------------------------------------

_KINDS = (
    ("REMOTE_CONSULTATION", 0.35),
    ("REMOTE_IMAGING", 0.25),
    ("MDT", 0.12),
    ("ON_SITE", 0.13),
    ("REMOTE_ECG", 0.09),
    ("REMOTE_PATHOLOGY", 0.06),
)
_FEES = {  # fen, by the provincial price standard's order of magnitude
    "REMOTE_CONSULTATION": (20000, 30000),
    "MDT": (40000, 50000),
    "ON_SITE": (30000, 50000),
    "REMOTE_IMAGING": (20000, 25000),
    "REMOTE_ECG": (20000, 22000),
    "REMOTE_PATHOLOGY": (25000, 35000),
}
_PURPOSES = {
    "REMOTE_CONSULTATION": ("明确诊断及下一步治疗方案", "评估手术指征及手术方式"),
    "MDT": ("多学科评估手术风险及围手术期处理", "合并多种基础疾病，请多学科协助制定治疗方案"),
    "ON_SITE": ("请上级专家来院指导手术", "病情危重不宜转运，请专家现场会诊"),
    "REMOTE_IMAGING": ("请上级医院专家阅片，明确骨折分型", "明确影像诊断"),
    "REMOTE_ECG": ("术前心电图异常，请协助诊断", "明确心律失常类型，评估手术耐受性"),
    "REMOTE_PATHOLOGY": ("骨肿瘤性质待定，请协助病理诊断", "明确病变性质"),
}
_SPECIALTY = {
    "REMOTE_IMAGING": "骨肌影像",
    "REMOTE_ECG": "心电诊断",
    "REMOTE_PATHOLOGY": "骨与软组织病理",
    "MDT": "骨科、麻醉科、内分泌科",
}
_DECLINE_REASONS = (
    "该专业专家本周外出，建议改约其他骨干医院",
    "申请资料不全，请补充影像资料后重新申请",
)
_CONSULT_CANCEL = ("患者病情变化，已急诊转院", "患者及家属放弃会诊", "本院已明确诊断，无需会诊")


def _consultation_statuses(days_ago: int) -> tuple[tuple[str, float], ...]:
    if days_ago <= 2:
        return (
            ("REQUESTED", 0.55),
            ("ACCEPTED", 0.25),
            ("SCHEDULED", 0.1),
            ("DECLINED", 0.05),
            ("CANCELLED", 0.05),
        )
    if days_ago <= 10:
        return (
            ("ACCEPTED", 0.1),
            ("SCHEDULED", 0.2),
            ("IN_PROGRESS", 0.1),
            ("REPORTED", 0.4),
            ("DECLINED", 0.1),
            ("CANCELLED", 0.1),
        )
    if days_ago <= 30:
        return (("REPORTED", 0.45), ("CLOSED", 0.4), ("DECLINED", 0.08), ("CANCELLED", 0.07))
    return (("CLOSED", 0.85), ("REPORTED", 0.02), ("DECLINED", 0.07), ("CANCELLED", 0.06))


def _opinion(rng: random.Random, kind: str, dx: _Diagnosis) -> str:
    if kind == "REMOTE_IMAGING":
        return (
            f"阅片所见：{dx.site}影像符合{dx.name}表现。诊断意见：{dx.name}。"
            "建议：结合临床，必要时行CT三维重建进一步评估。"
        )
    if kind == "REMOTE_ECG":
        finding = rng.choice(("窦性心律，偶发房性早搏", "窦性心律，ST-T改变", "窦性心动过缓"))
        return f"心电图诊断：{finding}。建议：完善心脏彩超，评估心功能后可耐受手术。"
    if kind == "REMOTE_PATHOLOGY":
        return "病理诊断：送检组织为骨折愈合期骨痂及纤维组织，未见肿瘤性病变。"
    return (
        f"结合病史、查体及影像资料，考虑{dx.name}。建议{dx.procedure}，术前完善凝血功能、"
        "下肢静脉彩超等检查，围手术期预防深静脉血栓。具体诊疗由申请方主管医师结合临床决定。"
    )


def _attached_studies(rng: random.Random, kind: str, code: str, day: date) -> list[str]:
    """The requesting hospital's PACS, ECG or pathology accession numbers sent with a request."""
    if kind in ("REMOTE_IMAGING", "REMOTE_CONSULTATION", "MDT", "ON_SITE"):
        return [
            f"{code}:PACS:{day:%Y%m%d}{rng.randint(1, 9999):04d}" for _ in range(rng.randint(1, 3))
        ]
    if kind == "REMOTE_ECG":
        return [f"{code}:ECG:{day:%Y%m%d}{rng.randint(1, 9999):04d}"]
    if kind == "REMOTE_PATHOLOGY":
        return [f"{code}:PATH:{day:%Y%m%d}{rng.randint(1, 999):03d}"]
    return []


def _consultations(ctx: _Context) -> tuple[Rows, Rows]:
    rng, me = ctx.rng, ctx.hospital
    invited = ctx.targets(True)
    if not ctx.patients or not invited or me.role == "LEAD":
        return [], []
    count = ctx.scaled(30, 120) if me.role == "MEMBER" else ctx.scaled(10, 30)
    rows: Rows = []
    reports: Rows = []
    for _ in range(count):
        patient, to = ctx.patient_for(invited)
        pseudo = ctx.pseudonyms[patient.resident_id]
        days_ago = _days_ago(rng, recent_share=0.12, recent_days=21)
        day = ctx.today - timedelta(days=days_ago)
        created = _at(day, rng)
        kind = _weighted(rng, _KINDS)
        dx = _primary_diagnosis(patient, pseudo, ctx.today)
        urgency = _weighted(rng, (("ROUTINE", 0.75), ("URGENT", 0.2), ("EMERGENCY", 0.05)))
        quick = urgency != "ROUTINE" or kind in ("REMOTE_IMAGING", "REMOTE_ECG")
        proposed = (
            created + _hours(rng.uniform(1, 6))
            if quick
            else datetime.combine(
                day + timedelta(days=rng.randint(1, 3)), time(rng.choice((9, 10, 14, 15)), 30), CST
            )
        )
        accepted = created + _hours(rng.uniform(0.2, 1 if quick else 12))
        scheduled = proposed + timedelta(hours=rng.choice((0, 0, 0, 1, 24)))
        issued = scheduled + _hours(rng.uniform(0.5, 6))
        closed = issued + _hours(24 * rng.uniform(1, 7))
        status = _weighted(rng, _consultation_statuses(days_ago))
        if status == "CLOSED" and closed >= ctx.end:
            status = "REPORTED"
        if status == "REPORTED" and issued >= ctx.end:
            status = "IN_PROGRESS"
        if status == "IN_PROGRESS" and scheduled >= ctx.end:
            status = "SCHEDULED"
        if status in ("SCHEDULED", "ACCEPTED", "DECLINED", "CANCELLED") and accepted >= ctx.end:
            status = "REQUESTED"
        last = {
            "REQUESTED": created,
            "ACCEPTED": accepted,
            "DECLINED": accepted,
            "CANCELLED": accepted,
            "SCHEDULED": accepted + timedelta(minutes=20),
            "IN_PROGRESS": scheduled,
            "REPORTED": issued,
            "CLOSED": closed,
        }[status]
        last = min(last, ctx.end - timedelta(minutes=1))
        expert = rng.choice(_experts(to))
        has_expert = status in ("SCHEDULED", "IN_PROGRESS", "REPORTED", "CLOSED") or (
            status == "ACCEPTED" and rng.random() < 0.5
        )
        age = _age(patient, day)
        studies = _attached_studies(rng, kind, me.code, day)
        low, high = _FEES[kind]
        row: dict[str, Any] = {
            "id": 0,
            "kind": kind,
            "requesting_hospital": me.code,
            "requesting_doctor": _name(rng),
            "invited_hospital": to,
            "department": rng.choice(("骨科", "骨伤科", "创伤骨科")),
            "patient_pseudonym": pseudo,
            "patient_sex": patient.sex,
            "patient_age": age,
            "urgency": urgency,
            "purpose": rng.choice(_PURPOSES[kind]),
            "case_summary": _condition(rng, dx, age, patient.sex),
            "attached_studies": studies,
            "desired_specialty": _SPECIALTY.get(kind, _DEPARTMENT[dx.family]),
            "desired_title": rng.choice(("主任医师", "主任医师", "副主任医师")),
            "proposed_at": proposed,
            "consent_obtained": True,
            "status": status,
            "status_reason": (
                rng.choice(_DECLINE_REASONS)
                if status == "DECLINED"
                else rng.choice(_CONSULT_CANCEL)
                if status == "CANCELLED"
                else None
            ),
            "expert_name": expert.name if has_expert else None,
            "expert_title": expert.title if has_expert else None,
            "scheduled_at": scheduled
            if status in ("SCHEDULED", "IN_PROGRESS", "REPORTED", "CLOSED")
            else None,
            "fee_fen": None
            if status in ("DECLINED", "CANCELLED")
            else rng.randrange(low, high + 1, 500),
            "idempotency_key": None,
            "created_by": f"{me.code}-D{rng.randint(1, 60):03d}",
            "created_at": created,
            "updated_at": last,
            "version": 1,
        }
        rows.append(row)
        if status in ("REPORTED", "CLOSED"):
            reports.append(
                {
                    "consultation_id": row,  # replaced by the id once rows are ordered
                    "issued_at": issued,
                    "expert_name": expert.name,
                    "opinion": _opinion(rng, kind, dx),
                    "signed": True,
                    "updated_at": issued,
                    "version": 1,
                }
            )
    rows.sort(key=lambda r: r["created_at"])
    for i, row in enumerate(rows, start=1):
        row["id"] = i
    for report in reports:
        report["consultation_id"] = report["consultation_id"]["id"]
    reports.sort(key=lambda r: r["consultation_id"])
    return rows, reports


# -- training and placements -----------------------------------------------------------------

_TOPICS = {
    "TRAINING_COURSE": (
        "骨质疏松性骨折规范化诊疗培训班",
        "创伤骨科AO原则基础培训班",
        "关节置换围手术期管理培训班",
        "平乐正骨手法复位技术培训班",
        "脊柱微创技术培训班",
        "骨科护理质量提升培训班",
    ),
    "LECTURE_TOUR": (
        "平乐正骨特色疗法基层巡讲",
        "老年髋部骨折多学科协作诊疗巡讲",
        "膝骨关节炎阶梯治疗巡讲",
    ),
    "SURGERY_DEMONSTRATION": (
        "人工全膝关节置换术示教",
        "经皮椎体后凸成形术(PKP)示教",
        "股骨粗隆间骨折PFNA内固定示教",
        "单侧双通道脊柱内镜(UBE)手术示教",
        "关节镜下前交叉韧带重建示教",
    ),
    "CLINICAL_TEACHING": ("手法整复小夹板固定临床带教", "骨科围手术期护理带教", "骨科急诊处置带教"),
    "TEACHING_ROUND": (
        "股骨颈骨折术后教学查房",
        "腰椎间盘突出症教学查房",
        "胫骨平台骨折教学查房",
        "骨质疏松性椎体骨折教学查房",
    ),
    "REMOTE_TEACHING": (
        "骨盆骨折急救处理",
        "膝骨关节炎阶梯治疗",
        "骨科影像读片",
        "骨科深静脉血栓预防",
        "儿童肱骨髁上骨折诊治",
        "骨科加速康复外科(ERAS)",
        "中医骨伤手法规范",
    ),
    "CASE_DISCUSSION": (
        "复杂胫骨平台骨折疑难病例讨论",
        "骨折术后感染疑难病例讨论",
        "髋关节翻修疑难病例讨论",
        "脊柱结核疑难病例讨论",
    ),
    "ACADEMIC_CONFERENCE": ("骨伤专科联盟年会暨骨伤诊疗新进展学术会议", "中原骨科论坛"),
    "FREE_CLINIC": ("“服务百姓健康行动”骨科义诊", "世界骨质疏松日义诊", "骨科专家进社区义诊"),
}

# Events a year, by the host's role.
_EVENTS_PER_YEAR: dict[str, dict[str, tuple[int, int]]] = {
    "LEAD": {
        "TRAINING_COURSE": (3, 5),
        "LECTURE_TOUR": (4, 8),
        "SURGERY_DEMONSTRATION": (4, 8),
        "CLINICAL_TEACHING": (4, 6),
        "TEACHING_ROUND": (6, 10),
        "CASE_DISCUSSION": (6, 10),
        "ACADEMIC_CONFERENCE": (1, 2),
        "FREE_CLINIC": (3, 6),
    },
    "BACKBONE": {
        "REMOTE_TEACHING": (2, 4),
        "TRAINING_COURSE": (1, 2),
        "LECTURE_TOUR": (1, 3),
        "SURGERY_DEMONSTRATION": (1, 3),
        "CLINICAL_TEACHING": (1, 3),
        "TEACHING_ROUND": (3, 5),
        "CASE_DISCUSSION": (3, 6),
        "ACADEMIC_CONFERENCE": (0, 1),
        "FREE_CLINIC": (2, 4),
    },
    "MEMBER": {"CASE_DISCUSSION": (1, 3), "TEACHING_ROUND": (0, 2), "FREE_CLINIC": (1, 3)},
}
_CREDITS = {
    "TRAINING_COURSE": ("4.0", "6.0", "10.0"),
    "ACADEMIC_CONFERENCE": ("6.0", "8.0"),
    "REMOTE_TEACHING": ("1.0",),
    "LECTURE_TOUR": ("2.0",),
    "SURGERY_DEMONSTRATION": ("2.0", "3.0"),
    "CASE_DISCUSSION": ("0.5", "1.0"),
}


def _training(ctx: _Context) -> tuple[Rows, Rows]:
    rng, me = ctx.rng, ctx.hospital
    others = [h for h in ctx.by_code.values() if h.code != me.code]
    members = [h for h in others if h.role == "MEMBER"] or others
    experts = _experts(me.code)
    lead_experts = _experts(demo_data.LEAD)
    planned: list[tuple[str, int]] = []  # kind, days ago
    for year in range(2):  # year 0 = the last 365 days
        first, last = 1 + 365 * year, 365 * (year + 1)
        for kind, (low, high) in _EVENTS_PER_YEAR[me.role].items():
            for _ in range(round(rng.randint(low, high) * ctx.scale)):
                planned.append((kind, rng.randint(first, last)))
        if me.role == "LEAD":
            # Remote teaching about monthly: at least 10 in every year (indicator 12).
            n = max(10, round(rng.randint(12, 15) * ctx.scale))
            step = 365 // n
            slots = rng.sample(range(first, last + 1, step), n)
            planned += [("REMOTE_TEACHING", min(last, s + rng.randint(0, step - 1))) for s in slots]
    events: Rows = []
    participation: list[tuple[dict[str, Any], dict[str, int]]] = []
    for kind, days_ago in planned:
        held = ctx.today - timedelta(days=min(days_ago, DAYS))
        online = kind == "REMOTE_TEACHING" or (kind == "ACADEMIC_CONFERENCE" and rng.random() < 0.3)
        site = rng.choice(members) if kind in ("LECTURE_TOUR", "FREE_CLINIC") else me
        if online:
            place = rng.choice(("联盟远程医疗协作平台", "腾讯会议（线上）"))
        elif kind == "FREE_CLINIC":
            place = f"{_short_name(site.code)}服务辖区乡镇卫生院"
        elif kind == "SURGERY_DEMONSTRATION":
            place = f"{_short_name(me.code)}手术室（示教室同步转播）"
        else:
            place = f"{_short_name(site.code)}学术报告厅"
        topic = rng.choice(_TOPICS[kind])
        if kind == "REMOTE_TEACHING":
            topic = f"远程教学：{topic}"
        pool = lead_experts if me.role == "MEMBER" and kind == "CASE_DISCUSSION" else experts
        lecturers = [e.name for e in rng.sample(pool, rng.randint(1, 3))]
        credits = rng.choice(_CREDITS[kind]) if kind in _CREDITS else None
        announced = _at(held - timedelta(days=rng.randint(7, 30)), rng)
        recorded = min(_at(held, rng, 16, 22), ctx.end - timedelta(minutes=1))
        event: dict[str, Any] = {
            "id": 0,
            "kind": kind,
            "host_hospital": me.code,
            "mode": "ONLINE" if online else "ON_SITE",
            "place": place,
            "held_on": held,
            "topic": topic,
            "lecturers": lecturers,
            "credits": Decimal(credits) if credits else None,
            "created_at": announced,
            "updated_at": recorded,
            "version": 1,
        }
        counts = {me.code: rng.randint(8, 60)}
        if online:
            for h in others:
                if rng.random() < 0.8:
                    counts[h.code] = rng.randint(3, 30)
        elif site.code != me.code:
            counts[site.code] = rng.randint(15, 60)
            counts[me.code] = rng.randint(2, 6)
        elif me.role != "MEMBER":
            for h in rng.sample(others, min(len(others), rng.randint(2, 5))):
                counts[h.code] = rng.randint(1, 12)
        elif rng.random() < 0.6 and demo_data.LEAD in ctx.by_code and me.code != demo_data.LEAD:
            counts[demo_data.LEAD] = rng.randint(1, 3)
        events.append(event)
        participation.append((event, counts))
    events.sort(key=lambda e: (e["held_on"], e["created_at"]))
    for i, event in enumerate(events, start=1):
        event["id"] = i
    rows = [
        {"event_id": event["id"], "hospital": code, "participants": n}
        for event, counts in participation
        for code, n in counts.items()
    ]
    rows.sort(key=lambda r: (r["event_id"], r["hospital"]))
    return events, rows


_PLACEMENT_DEPARTMENTS = {
    "DOCTOR": ("创伤骨科", "脊柱外科", "关节外科", "骨伤科", "小儿骨科", "手外科", "运动医学科"),
    "NURSE": ("骨科护理", "手术室", "康复护理"),
    "TECHNICIAN": ("医学影像科", "康复治疗科"),
}
_EVALUATIONS = (
    "优秀：理论扎实，能独立完成常见骨折的手法复位及内固定手术",
    "良好：掌握本专业常见病诊疗规范，学习态度端正",
    "良好：能熟练配合完成关节置换手术，护理文书规范",
    "合格：基本掌握进修内容，建议继续加强手术操作训练",
)


def _placements(ctx: _Context) -> Rows:
    rng, me = ctx.rng, ctx.hospital
    if me.role != "LEAD":
        return []
    supervisors = _experts(me.code)
    rows: Rows = []
    for home in ctx.by_code.values():
        if home.code == me.code:
            continue
        low, high = (4, 8) if home.role == "MEMBER" else (1, 3)
        for _ in range(round(rng.randint(low, high) * ctx.scale)):
            profession = _weighted(rng, (("DOCTOR", 0.7), ("NURSE", 0.25), ("TECHNICIAN", 0.05)))
            months = _weighted(rng, ((3, 0.3), (6, 0.5), (12, 0.2)))
            back = rng.randint(0, 23)
            starts = clock.add_months(ctx.today.replace(day=1), -back)
            ends = clock.add_months(starts, months) - timedelta(days=1)
            created = _at(starts - timedelta(days=rng.randint(20, 45)), rng)
            finished = ends < ctx.today
            rows.append(
                {
                    "id": 0,
                    "host_hospital": me.code,
                    "home_hospital": home.code,
                    "trainee_name": _name(rng),
                    "profession": profession,
                    "department": rng.choice(_PLACEMENT_DEPARTMENTS[profession]),
                    "supervisor": rng.choice(supervisors).name,
                    "starts_on": starts,
                    "ends_on": ends,
                    "fee_waived": True,
                    "evaluation": rng.choice(_EVALUATIONS) if finished else None,
                    "created_at": created,
                    "updated_at": _at(ends, rng) if finished else created,
                    "version": 1,
                }
            )
    rows.sort(key=lambda r: (r["starts_on"], r["created_at"]))
    for i, row in enumerate(rows, start=1):
        row["id"] = i
    return rows


# -- results and quality control -------------------------------------------------------------


@dataclass(frozen=True)
class _Lab:
    key: str
    loinc: str
    names: tuple[str, ...]  # hospitals name the item differently
    unit: str
    ranges: tuple[str, ...]  # and print different reference ranges
    mean: float
    sd: float
    decimals: int
    female_ranges: tuple[str, ...] = ()


# Units as Chinese labs report them. Validity (Hubei list): 7 days K/Na/Cl/Ca/Mg/Fe; 30 days
# glucose, lipids, albumin, bilirubin, ferritin; 60 days HbA1c.
_LABS = (
    _Lab("K", "2823-3", ("钾", "血清钾", "K"), "mmol/L", ("3.5-5.3", "3.5-5.5"), 4.2, 0.4, 2),
    _Lab("NA", "2951-2", ("钠", "血清钠", "Na"), "mmol/L", ("137-147", "135-145"), 140.5, 2.8, 1),
    _Lab("CL", "2075-0", ("氯", "血清氯", "Cl"), "mmol/L", ("99-110", "96-108"), 103.0, 2.8, 1),
    _Lab(
        "CA", "17861-6", ("钙", "血清钙", "Ca"), "mmol/L", ("2.11-2.52", "2.08-2.60"), 2.3, 0.12, 2
    ),
    _Lab(
        "MG", "2601-3", ("镁", "血清镁", "Mg"), "mmol/L", ("0.75-1.02", "0.70-1.10"), 0.88, 0.08, 2
    ),
    _Lab(
        "FE",
        "14798-3",
        ("铁", "血清铁", "Fe"),
        "μmol/L",
        ("10.6-36.7",),
        18.0,
        5.5,
        1,
        ("7.8-32.2",),
    ),
    _Lab(
        "GLU",
        "2345-7",
        ("葡萄糖", "空腹血糖", "GLU"),
        "mmol/L",
        ("3.9-6.1", "3.89-6.11"),
        5.3,
        0.6,
        2,
    ),
    _Lab("TC", "2093-3", ("总胆固醇", "TC"), "mmol/L", ("2.80-5.17", "0-5.18"), 4.6, 0.8, 2),
    _Lab("TG", "2571-8", ("甘油三酯", "TG"), "mmol/L", ("0.56-1.70", "0-1.70"), 1.4, 0.5, 2),
    _Lab(
        "HDL",
        "2085-9",
        ("高密度脂蛋白胆固醇", "HDL-C"),
        "mmol/L",
        ("1.04-1.55", "0.91-2.05"),
        1.25,
        0.25,
        2,
    ),
    _Lab(
        "LDL",
        "13457-7",
        ("低密度脂蛋白胆固醇", "LDL-C"),
        "mmol/L",
        ("0-3.37", "1.30-3.36"),
        2.8,
        0.7,
        2,
    ),
    _Lab("ALB", "1751-7", ("白蛋白", "ALB"), "g/L", ("40-55", "35-50"), 40.0, 4.0, 1),
    _Lab(
        "TBIL",
        "1975-2",
        ("总胆红素", "TBIL"),
        "μmol/L",
        ("3.4-20.5", "5.1-19.0", "0-21.0"),
        12.0,
        4.5,
        1,
    ),
    _Lab("HBA1C", "4548-4", ("糖化血红蛋白", "HbA1c"), "%", ("4.0-6.0", "4.27-6.07"), 5.6, 0.5, 1),
    _Lab(
        "FER",
        "2276-4",
        ("铁蛋白", "血清铁蛋白", "FER"),
        "ng/mL",
        ("30-400",),
        150.0,
        70.0,
        1,
        ("13-150",),
    ),
)
_LAB = {lab.key: lab for lab in _LABS}


@dataclass(frozen=True)
class _Exam:
    key: str
    loinc: str | None
    name: str
    findings: tuple[str, ...]


_EXAMS = {
    "XR_KNEE": _Exam(
        "XR_KNEE",
        "24806-2",
        "膝关节X线正侧位",
        (
            "双膝关节间隙变窄，关节边缘骨赘形成，符合膝关节骨性关节炎表现",
            "膝关节诸骨骨质未见明显异常，关节间隙正常",
        ),
    ),
    "MR_LSPINE": _Exam(
        "MR_LSPINE",
        "24968-0",
        "腰椎MRI平扫",
        (
            "L4/5椎间盘向左后方突出，相应硬膜囊及神经根受压",
            "腰椎退行性变，L3/4、L4/5椎间盘膨出",
        ),
    ),
    "CT_LSPINE": _Exam(
        "CT_LSPINE",
        "24963-1",
        "腰椎CT平扫",
        (
            "L1椎体压缩性骨折，椎体后缘骨皮质完整",
            "腰椎骨质增生，未见明确骨折征象",
        ),
    ),
    "CT_HIP": _Exam(
        "CT_HIP",
        None,
        "髋关节CT平扫+三维重建",
        (
            "股骨颈骨折，断端嵌插，股骨头未见明显移位",
            "双髋关节骨质未见明显骨折征象",
        ),
    ),
    "DXA": _Exam(
        "DXA",
        None,
        "双能X线骨密度测定",
        (
            "腰椎L1-L4 T值-2.8，股骨颈T值-2.6，符合骨质疏松",
            "腰椎L1-L4 T值-1.6，符合骨量减少",
        ),
    ),
    "ECG": _Exam(
        "ECG",
        "11524-6",
        "常规十二导联心电图",
        (
            "窦性心律，正常心电图",
            "窦性心律，ST-T改变",
            "窦性心律，完全性右束支传导阻滞",
        ),
    ),
}
_SITE_EXAMS = {
    "FRACTURE": ("CT_HIP", "CT_LSPINE"),
    "JOINT": ("XR_KNEE", "CT_HIP"),
    "SPINE": ("MR_LSPINE", "CT_LSPINE"),
    "OSTEOPOROSIS": ("DXA", "CT_LSPINE"),
    "SPORTS": ("XR_KNEE",),
}

# Panels an encounter orders, by how long ago it was.
_RECENT = ("K", "NA", "CL", "CA", "GLU", "ALB", "TBIL")
_MONTH = ("GLU", "TC", "TG", "HDL", "LDL", "HBA1C", "K", "NA")
_OLDER = (
    ("K", "NA", "CL", "CA", "MG"),
    ("GLU", "HBA1C"),
    ("TC", "TG", "HDL", "LDL"),
    ("ALB", "TBIL"),
    ("FE", "FER"),
)


@dataclass(frozen=True)
class _Traits:
    """What makes one patient's values alike at every hospital."""

    diabetic: bool
    dyslipidaemic: bool
    iron_deficient: bool
    offsets: dict[str, float]


def _traits(pseudo: str) -> _Traits:
    rng = random.Random(f"traits:{pseudo}")
    return _Traits(
        diabetic=rng.random() < 0.15,
        dyslipidaemic=rng.random() < 0.25,
        iron_deficient=rng.random() < 0.1,
        offsets={lab.key: rng.gauss(0, 0.5) for lab in _LABS},
    )


def _lab_value(rng: random.Random, lab: _Lab, traits: _Traits) -> float:
    mean, sd = lab.mean + traits.offsets[lab.key] * lab.sd, lab.sd * 0.6
    if traits.diabetic and lab.key in ("GLU", "HBA1C"):
        mean *= 1.55
    if traits.dyslipidaemic and lab.key in ("TC", "TG", "LDL"):
        mean *= 1.4
    if traits.iron_deficient and lab.key in ("FE", "FER"):
        mean *= 0.35
    return max(rng.gauss(mean, sd), lab.mean * 0.15)


class _LocalCodes:
    """The hospital's own item codes and names: different at every hospital."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.style = _stable(code) % 3
        self.pick = random.Random(f"names:{code}")

    def item_code(self, key: str, index: int) -> str:
        if self.style == 0:
            return f"{self.code}-{key}"
        if self.style == 1:
            return f"{self.code}.{1000 + index}"
        return f"{self.code}/{key.lower()}"


@dataclass(frozen=True)
class _Catalogue:
    """A hospital's own item codes, item names and printed reference ranges."""

    local: _LocalCodes
    names: dict[str, str]
    ranges: dict[str, int]
    index: dict[str, int]

    def item_code(self, key: str) -> str:
        return self.local.item_code(key, self.index[key])


@cache
def _catalogue(code: str) -> _Catalogue:
    local = _LocalCodes(code)
    names = {lab.key: local.pick.choice(lab.names) for lab in _LABS}
    ranges = {lab.key: local.pick.randrange(len(lab.ranges)) for lab in _LABS}
    index = {key: i for i, key in enumerate([*_LAB, *_EXAMS])}
    return _Catalogue(local, names, ranges, index)


def _lab_row(
    rng: random.Random,
    catalogue: _Catalogue,
    key: str,
    patient: SyntheticPatient,
    pseudo: str,
    traits: _Traits,
    drawn: datetime,
) -> dict[str, Any]:
    lab = _LAB[key]
    female = patient.sex == "FEMALE" and lab.female_ranges
    span = lab.female_ranges if female else lab.ranges
    return {
        "id": 0,
        "patient_pseudonym": pseudo,
        "item_code": catalogue.item_code(key),
        "item_name": catalogue.names[key],
        "loinc": lab.loinc,
        "category": "LAB",
        "value": f"{_lab_value(rng, lab, traits):.{lab.decimals}f}",
        "unit": lab.unit,
        "reference_range": span[min(catalogue.ranges[key], len(span) - 1)],
        "performed_at": drawn,
        "created_at": drawn + _hours(rng.uniform(1, 5)),
    }


def _exam_row(
    rng: random.Random, catalogue: _Catalogue, key: str, pseudo: str, drawn: datetime
) -> dict[str, Any]:
    exam = _EXAMS[key]
    performed = drawn + _hours(rng.uniform(1, 6))
    return {
        "id": 0,
        "patient_pseudonym": pseudo,
        "item_code": catalogue.item_code(key),
        "item_name": exam.name,
        "loinc": exam.loinc,
        "category": "EXAM",
        "value": rng.choice(exam.findings),
        "unit": None,
        "reference_range": None,
        "performed_at": performed,
        "created_at": performed + _hours(rng.uniform(2, 20)),
    }


def _results(ctx: _Context) -> Rows:
    rng, me = ctx.rng, ctx.hospital
    catalogue = _catalogue(me.code)
    rows: Rows = []

    def encounter(
        pseudo: str,
        patient: SyntheticPatient,
        days_ago: int,
        items: Sequence[str],
        exams: Sequence[str],
    ) -> None:
        traits = _traits(pseudo)
        drawn = _at(ctx.today - timedelta(days=days_ago), rng, 6, 10)
        rows.extend(_lab_row(rng, catalogue, k, patient, pseudo, traits, drawn) for k in items)
        rows.extend(_exam_row(rng, catalogue, k, pseudo, drawn) for k in exams)

    for patient in ctx.patients:
        pseudo = ctx.pseudonyms[patient.resident_id]
        dx = _primary_diagnosis(patient, pseudo, ctx.today)
        site_exams = _SITE_EXAMS[dx.family]
        # This week (pre-operative work-up), within the last two months, and older visits.
        encounter(
            pseudo,
            patient,
            rng.randint(1, 5),
            _RECENT,
            [rng.choice(site_exams), "ECG"] if rng.random() < 0.6 else ["ECG"],
        )
        encounter(
            pseudo,
            patient,
            rng.randint(9, 55),
            _MONTH,
            [rng.choice(site_exams)] if rng.random() < 0.4 else [],
        )
        for _ in range(rng.randint(1, 3)):
            panels = rng.sample(_OLDER, rng.randint(1, 3))
            encounter(
                pseudo,
                patient,
                rng.randint(65, DAYS),
                [k for p in panels for k in p],
                [rng.choice(site_exams)] if rng.random() < 0.5 else [],
            )
    for row in rows:
        row["created_at"] = min(row["created_at"], ctx.end - timedelta(minutes=1))
        row["updated_at"] = row["created_at"]
        row["version"] = 1
    rows.sort(key=lambda r: (r["performed_at"], r["patient_pseudonym"], r["item_code"]))
    for i, row in enumerate(rows, start=1):
        row["id"] = i
    return rows


def _quality_control(ctx: _Context) -> Rows:
    rng, me = ctx.rng, ctx.hospital
    gaps = QC_GAPS.get(me.code, {})
    loincs = [lab.loinc for lab in _LABS] + [e.loinc for e in _EXAMS.values() if e.loinc]
    rows: Rows = []
    for loinc in loincs:
        gap = gaps.get(loinc)
        if gap == "MISSING":
            continue
        if gap == "EXPIRED":
            until = ctx.today - timedelta(days=rng.randint(15, 120))
        else:
            until = ctx.today + timedelta(days=rng.randint(30, 330))
        exam = loinc in {e.loinc for e in _EXAMS.values()}
        for period in range(3):
            end = until - timedelta(days=365 * period)
            scheme = (
                "河南省医学影像质量控制中心年度质控"
                if exam
                else "国家卫生健康委临床检验中心室间质量评价"
                if period % 2 == 0
                else "河南省临床检验中心室间质量评价"
            )
            rows.append(
                {
                    "loinc": loinc,
                    "scheme": scheme,
                    "valid_from": end - timedelta(days=364),
                    "valid_until": end,
                }
            )
    return rows


# -- the whole hospital ----------------------------------------------------------------------


def activity_rows(
    hospital: SyntheticHospital,
    hospitals: Sequence[SyntheticHospital],
    patients: Sequence[SyntheticPatient],
    linkage_key: bytes,
    today: date,
    rng: random.Random,
    scale: float = 1.0,
) -> dict[str, list[dict[str, Any]]]:
    """Two years of activity at `hospital`, ending yesterday, as rows per exchange table keyed by
    logical column names with explicit ids from 1. Pure: the same arguments give the same rows.

    The hospital's rows are what it originates: referrals it sends, consultations it requests,
    training events and placements it hosts, results of its own patients (every patient whose
    `hospitals` include it; `scale` does not thin these), its labs' QC standing. Recognition
    decisions are left empty: they would name result ids at other hospitals."""
    by_code = {h.code: h for h in hospitals}
    by_code.setdefault(hospital.code, hospital)
    mine = [p for p in patients if hospital.code in p.hospitals]
    ctx = _Context(
        hospital=hospital,
        by_code=by_code,
        patients=mine,
        pseudonyms={p.resident_id: pseudonym(p.resident_id, linkage_key) for p in mine},
        today=today,
        rng=rng,
        scale=scale,
    )
    steps: list[tuple[str, Callable[[_Context], Any]]] = [
        ("referral", _referrals),
        ("consultation", _consultations),
        ("training_event", _training),
        ("placement", _placements),
        ("test_result", _results),
        ("quality_control", _quality_control),
    ]
    out: dict[str, list[dict[str, Any]]] = {table: [] for table in LOAD_ORDER}
    for table, step in steps:
        made = step(ctx)
        if table == "consultation":
            out["consultation"], out["consultation_report"] = made
        elif table == "training_event":
            out["training_event"], out["training_participation"] = made
        else:
            out[table] = made
    out.update(_figures(hospital, by_code.values(), today))
    return out


def _figures(
    hospital: SyntheticHospital, hospitals: Iterable[SyntheticHospital], today: date
) -> dict[str, list[dict[str, Any]]]:
    return figures.figures_rows(
        hospital.code, hospital.grade, hospital.role, [(h.code, h.role) for h in hospitals], today
    )


async def seed_activity(
    conn: asyncpg.Connection,
    hospital: SyntheticHospital,
    hospitals: Sequence[SyntheticHospital],
    patients: Sequence[SyntheticPatient],
    linkage_key: bytes,
    today: date,
    seed: int,
    renamed: dict[str, dict[str, str]] | None = None,
    scale: float = 1.0,
) -> dict[str, int]:
    """Install the exchange schema (under the hospital's own column names) and load its
    activity, all tables in one transaction. Counts per table; {} when the database already
    holds activity (a re-run)."""
    await bulk.install_schema(conn, renamed)
    tables: Sequence[str] = LOAD_ORDER
    if await bulk.has_rows(conn, "referral"):
        # A database seeded before the contract's part 2 is given only its figures.
        if await bulk.has_rows(conn, "specialty_volume"):
            return {}
        rows, tables = _figures(hospital, hospitals, today), figures.TABLES
    else:
        rows = activity_rows(
            hospital, hospitals, patients, linkage_key, today, random.Random(seed), scale
        )
    columns = ColumnMap(renamed)
    async with conn.transaction():
        for table in tables:
            await bulk.load(conn, columns, table, rows[table])
            if "id" in TABLES[table]:
                await bulk.reset_identity(conn, table)
    return {table: len(rows[table]) for table in tables}


async def seed_activity_mysql(
    conn: aiomysql.Connection,
    hospital: SyntheticHospital,
    hospitals: Sequence[SyntheticHospital],
    patients: Sequence[SyntheticPatient],
    linkage_key: bytes,
    today: date,
    seed: int,
    renamed: dict[str, dict[str, str]] | None = None,
    scale: float = 1.0,
) -> dict[str, int]:
    """seed_activity for a hospital whose exchange database is MySQL/MariaDB: the same rows, its
    schema (exchange.mysql.sql), all tables in one transaction."""
    await mysql_bulk.install_schema(conn, renamed)
    tables: Sequence[str] = LOAD_ORDER
    if await mysql_bulk.has_rows(conn, "referral"):
        # A database seeded before the contract's part 2 is given only its figures.
        if await mysql_bulk.has_rows(conn, "specialty_volume"):
            return {}
        rows, tables = _figures(hospital, hospitals, today), figures.TABLES
    else:
        rows = activity_rows(
            hospital, hospitals, patients, linkage_key, today, random.Random(seed), scale
        )
    columns = ColumnMap(renamed)
    await conn.begin()
    try:
        for table in tables:
            await mysql_bulk.load(conn, columns, table, rows[table])
        await conn.commit()
    except BaseException:
        await conn.rollback()
        raise
    return {table: len(rows[table]) for table in tables}


# -- live activity: one row at a time, as a hospital's own systems write it -------------------
#
# gateway.demo.simulate writes these while the demo serves. Rows carry no id, created_at,
# updated_at or version: the database's defaults give a new row what a real HIS row gets.

_UP_SHARE = {"MEMBER": 1.0, "BACKBONE": 0.45, "LEAD": 0.0}
# Statuses a consultation can still be reported from, and a referral still be stepped from.
OPEN_CONSULTATION = ("REQUESTED", "ACCEPTED", "SCHEDULED", "IN_PROGRESS")
OPEN_REFERRAL = ("INITIATED", "ACCEPTED", "ARRIVED")


def referral_destinations(
    hospital: SyntheticHospital, hospitals: Iterable[SyntheticHospital], up: bool
) -> list[SyntheticHospital]:
    """Where `hospital` may refer a patient under the gateway's own rule
    (resolvers.referrals.expected_direction): by role first (seed 001 #16, #17), UP to the lead
    and the lead DOWN to anyone; between two others, up to a strictly higher grade (backbones
    first), down to a strictly lower one."""
    mine = GRADES.index(hospital.grade)

    def direction(to: SyntheticHospital) -> int:
        if to.role == "LEAD":
            return 1
        if hospital.role == "LEAD":
            return -1
        return (GRADES.index(to.grade) > mine) - (GRADES.index(to.grade) < mine)

    others = [h for h in hospitals if h.code != hospital.code]
    if up:
        higher = [h for h in others if direction(h) > 0]
        return [h for h in higher if h.role != "MEMBER"] or higher
    return [h for h in others if direction(h) < 0]


def patients_at(code: str, patients: Iterable[SyntheticPatient]) -> list[SyntheticPatient]:
    """The patients with records at a hospital: the only ones its systems know."""
    return [p for p in patients if code in p.hospitals]


def new_referral(
    rng: random.Random,
    hospital: SyntheticHospital,
    hospitals: Sequence[SyntheticHospital],
    patients: Sequence[SyntheticPatient],
    linkage_key: bytes,
    now: datetime,
    referral_no: str,
) -> dict[str, Any] | None:
    """A referral `hospital` sends today, INITIATED; None when it has nobody to send or
    nowhere to send them."""
    mine = patients_at(hospital.code, patients)
    up = referral_destinations(hospital, hospitals, True)
    down = referral_destinations(hospital, hospitals, False)
    if not mine or not (up or down):
        return None
    share = _UP_SHARE[hospital.role] if up and down else 1.0 if up else 0.0
    going_up = rng.random() < share
    patient, to = patient_for(rng, mine, up if going_up else down)
    pseudo = pseudonym(patient.resident_id, linkage_key)
    day = now.astimezone(CST).date()
    age = _age(patient, day)
    dx = _referral_diagnosis(rng, patient, pseudo, day, day)
    green, urgency = _urgency(rng, going_up)
    row: dict[str, Any] = {
        "referral_no": referral_no,
        "direction": "UP" if going_up else "DOWN",
        "from_hospital": hospital.code,
        "from_department": _from_department(rng, dx, going_up, urgency),
        "to_hospital": to,
        "to_department": _to_department(rng, dx, going_up),
        "patient_pseudonym": pseudo,
        "patient_sex": patient.sex,
        "patient_age": age,
        "diagnosis_code": dx.code,
        "diagnosis_name": dx.name,
        "reason": rng.choice(_UP_REASONS[dx.family] if going_up else _DOWN_REASONS),
        "condition_summary": _condition(rng, dx, age, patient.sex),
        "notes": rng.choice(_NOTES) if rng.random() < 0.3 else None,
        "urgency": urgency,
        "green_channel": green,
        "status": "INITIATED",
        "requested_date": day + timedelta(days=0 if urgency != "ROUTINE" else rng.randint(0, 3)),
        "created_by": f"{hospital.code}-D{rng.randint(1, 60):03d}",
    }
    if not going_up:
        row.update(_discharge_documents(rng, dx, day))
    return row


def _diagnosis(code: str, name: str) -> _Diagnosis:
    """The catalogue's entry for a code; a row written by someone else may name another."""
    known = next((d for d in _DIAGNOSES if d.code == code), None)
    return known or _Diagnosis(code, name, 0, 150, 1, "FRACTURE", "", "专科治疗")


def referral_step(
    rng: random.Random, referral: Mapping[str, Any], now: datetime
) -> dict[str, Any] | None:
    """The next step of an open referral as column changes (INITIATED → ACCEPTED or REJECTED,
    ACCEPTED → ARRIVED, ARRIVED → COMPLETED); None when it is closed."""
    status = referral["status"]
    if status == "INITIATED":
        if rng.random() < 0.1:
            return {"status": "REJECTED", "status_reason": rng.choice(_REJECT_REASONS)}
        return {"status": "ACCEPTED"}
    if status == "ACCEPTED":
        return {"status": "ARRIVED", "arrived_at": now}
    if status != "ARRIVED":
        return None
    changes: dict[str, Any] = {"status": "COMPLETED", "completed_at": now}
    # A downward referral is completed with the discharge documents; keep any it came with.
    dx = _diagnosis(referral["diagnosis_code"], referral["diagnosis_name"])
    documents = _discharge_documents(rng, dx, now.astimezone(CST).date())
    if referral["direction"] == "UP":
        documents = {"treatment_result": documents["treatment_result"]}
    changes.update({k: v for k, v in documents.items() if not referral.get(k)})
    return changes


def new_consultation(
    rng: random.Random,
    hospital: SyntheticHospital,
    hospitals: Sequence[SyntheticHospital],
    patients: Sequence[SyntheticPatient],
    linkage_key: bytes,
    now: datetime,
) -> dict[str, Any] | None:
    """A tele-consultation `hospital` requests from a hospital above it, REQUESTED with the
    patient's consent; None for the top of the hierarchy or a hospital without patients."""
    mine = patients_at(hospital.code, patients)
    invited = partners(hospital, hospitals, True)
    if not mine or not invited:
        return None
    patient, to = patient_for(rng, mine, invited)
    pseudo = pseudonym(patient.resident_id, linkage_key)
    day = now.astimezone(CST).date()
    kind = _weighted(rng, _KINDS)
    dx = _primary_diagnosis(patient, pseudo, day)
    urgency = _weighted(rng, (("ROUTINE", 0.75), ("URGENT", 0.2), ("EMERGENCY", 0.05)))
    if urgency != "ROUTINE" or kind in ("REMOTE_IMAGING", "REMOTE_ECG"):
        proposed = now + _hours(rng.uniform(1, 6))
    else:
        slot = time(rng.choice((9, 10, 14, 15)), 30)
        proposed = datetime.combine(day + timedelta(days=rng.randint(1, 3)), slot, CST)
    age = _age(patient, day)
    low, high = _FEES[kind]
    return {
        "kind": kind,
        "requesting_hospital": hospital.code,
        "requesting_doctor": _name(rng),
        "invited_hospital": to,
        "department": rng.choice(("骨科", "骨伤科", "创伤骨科")),
        "patient_pseudonym": pseudo,
        "patient_sex": patient.sex,
        "patient_age": age,
        "urgency": urgency,
        "purpose": rng.choice(_PURPOSES[kind]),
        "case_summary": _condition(rng, dx, age, patient.sex),
        "attached_studies": _attached_studies(rng, kind, hospital.code, day),
        "desired_specialty": _SPECIALTY.get(kind, _DEPARTMENT[dx.family]),
        "desired_title": rng.choice(("主任医师", "主任医师", "副主任医师")),
        "proposed_at": proposed,
        "consent_obtained": True,
        "status": "REQUESTED",
        "fee_fen": rng.randrange(low, high + 1, 500),
        "created_by": f"{hospital.code}-D{rng.randint(1, 60):03d}",
    }


def consultation_report(
    rng: random.Random,
    consultation: Mapping[str, Any],
    patient: SyntheticPatient | None,
    today: date,
) -> dict[str, str]:
    """The invited hospital's signed opinion on an open consultation: expert_name,
    expert_title (the consultation's own expert if it named one) and opinion. `patient` is
    None for a patient the demo does not know; the case summary then names the diagnosis."""
    if consultation["status"] not in OPEN_CONSULTATION:
        raise ValueError("only an open consultation gets a report")
    expert = rng.choice(_experts(consultation["invited_hospital"]))
    if patient is not None:
        dx = _primary_diagnosis(patient, consultation["patient_pseudonym"], today)
    else:
        summary = consultation["case_summary"] or ""
        named = [d for d in _DIAGNOSES if d.name in summary]
        dx = named[0] if named else rng.choices(_DIAGNOSES, [d.weight for d in _DIAGNOSES])[0]
    return {
        "expert_name": consultation["expert_name"] or expert.name,
        "expert_title": consultation["expert_title"] or expert.title,
        "opinion": _opinion(rng, consultation["kind"], dx),
    }


def new_result(
    rng: random.Random,
    code: str,
    patients: Sequence[SyntheticPatient],
    linkage_key: bytes,
    now: datetime,
) -> dict[str, Any] | None:
    """A laboratory (检验) or examination (检查) result released now by hospital `code` for one
    of its patients, under its own item codes and names; None when it has no patients."""
    mine = patients_at(code, patients)
    if not mine:
        return None
    patient = rng.choice(mine)
    pseudo = pseudonym(patient.resident_id, linkage_key)
    catalogue = _catalogue(code)
    drawn = now - _hours(rng.uniform(6, 10))
    if rng.random() < 0.7:
        key = rng.choice(_RECENT)
        row = _lab_row(rng, catalogue, key, patient, pseudo, _traits(pseudo), drawn)
    else:
        dx = _primary_diagnosis(patient, pseudo, now.astimezone(CST).date())
        key = rng.choice([*_SITE_EXAMS[dx.family], "ECG"])
        row = _exam_row(rng, catalogue, key, pseudo, drawn)
    del row["id"], row["created_at"]
    # Released now: never performed in the future.
    row["performed_at"] = min(row["performed_at"], now - timedelta(minutes=30))
    return row
