"""Free texts as members write them: product names and loss descriptions, Chinese or English."""

from __future__ import annotations

import random

from pipelines.generate.randomness import pick_one

PRODUCTS_ZH = {
    "MTPL": ("机动车交通事故责任强制保险", "交强险（2020版）"),
    "MCOM": ("机动车商业保险（2020版）", "新能源汽车商业保险（2021版）", "家庭自用汽车综合险"),
    "EPROP": ("财产一切险（2009版）", "企业财产综合险"),
    "HPROP": ("家庭财产综合保险", "安居家财险（2022版）"),
    "ENG": ("建筑工程一切险", "安装工程一切险"),
    "LIAB": ("公众责任保险", "雇主责任保险（2015版）", "产品责任保险"),
    "CRED": ("国内贸易信用保险",),
    "SURE": ("个人贷款保证保险", "小微企业贷款保证保险"),
    "HULL": ("沿海内河船舶一切险",),
    "CARGO": ("国内水路、陆路货物运输保险", "进出口货物运输保险"),
    "SPEC": ("卫星发射及在轨保险",),
    "AGRI": ("中央财政补贴型水稻种植保险", "能繁母猪养殖保险", "玉米完全成本保险"),
    "HLTH": ("百万医疗保险（2023版）", "短期团体医疗保险"),
    "ACC": ("个人意外伤害保险", "学生平安保险", "一日游旅行意外险"),
}
PRODUCTS_EN = {
    "MTPL": ("Compulsory Motor TPL",),
    "MCOM": ("Motor Comprehensive 2020", "NEV Motor Cover", "Private Car, Comprehensive"),
    "EPROP": ("Property All Risks", "Commercial Property, Fire & Perils"),
    "HPROP": ("Home Buildings & Contents",),
    "ENG": ("Contractors All Risks",),
    "LIAB": ("Public Liability", "Employers' Liability"),
    "CRED": ("Domestic Trade Credit",),
    "SURE": ("Personal Loan Surety",),
    "HULL": ("Coastal Hull All Risks",),
    "CARGO": ("Domestic Cargo, Road and Waterway",),
    "SPEC": ("Satellite Launch and In-orbit",),
    "AGRI": ("Subsidised Rice Crop",),
    "HLTH": ("Million Medical 2023",),
    "ACC": ("Personal Accident", "Day-trip Accident Cover"),
}
LINE_GROUPS = {"MTPL": "motor", "MCOM": "motor", "EPROP": "property", "HPROP": "property",
               "ENG": "property", "SPEC": "property", "LIAB": "liability", "HULL": "marine",
               "CARGO": "marine", "AGRI": "agri", "HLTH": "health", "ACC": "health",
               "CRED": "credit", "SURE": "credit"}
LOSSES_ZH = {
    ("motor", "COLL"): ("追尾事故，车辆后部受损", "倒车时碰撞立柱，后保险杠刮擦",
                        "路口与电动自行车相撞，前部受损", "变道时与相邻车辆剐蹭"),
    ("motor", "THEFT"): ("车辆夜间停放时被盗，已报警",),
    ("motor", "FIRE"): ("车辆自燃，发动机舱烧毁",),
    ("motor", "FLOOD"): ("暴雨积水导致车辆发动机进水",),
    ("motor", "STORM"): ("冰雹砸坏车辆前挡风玻璃", "大风刮倒树木砸中车顶"),
    ("motor", "INJ"): ("第三者人身伤害，住院治疗", "乘客受伤送医", "行人被撞受伤，门诊治疗"),
    ("motor", "TPL"): ("碰撞第三者车辆，对方车辆维修", "追尾前车，对方车辆后部受损", "撞坏路边护栏"),
    ("property", "FIRE"): ("厂房电气线路短路起火", "厨房油锅起火，橱柜烧毁"),
    ("property", "FLOOD"): ("仓库进水，存货受损", "水管爆裂，地板泡水"),
    ("property", "STORM"): ("台风导致厂房屋顶受损", "大风吹倒围墙"),
    ("property", "THEFT"): ("室内财物被盗，门锁被撬", "仓库货物被盗"),
    ("property", "OTHER"): ("设备故障导致损失", "脚手架坍塌，在建工程受损"),
    ("liability", "TPL"): ("顾客在店内滑倒受伤", "高空坠物砸坏他人车辆"),
    ("liability", "INJ"): ("员工在作业中受伤", "访客在商场扶梯摔伤"),
    ("liability", "ILL"): ("员工确诊职业病",),
    ("marine", "COLL"): ("船舶靠泊时与码头碰撞", "运输途中车辆侧翻，货物受损"),
    ("marine", "THEFT"): ("运输途中货物被盗",),
    ("marine", "STORM"): ("航行中遭遇大风，货物湿损",),
    ("marine", "FLOOD"): ("集装箱进水，货物受潮",),
    ("agri", "FLOOD"): ("洪水淹没稻田",),
    ("agri", "STORM"): ("冰雹导致玉米倒伏",),
    ("agri", "ILL"): ("生猪疫病死亡", "奶牛疾病死亡"),
    ("agri", "OTHER"): ("病虫害导致减产",),
    ("health", "ILL"): ("急性阑尾炎住院手术", "肺炎住院治疗"),
    ("health", "INJ"): ("骑车摔伤，门诊治疗", "运动时骨折住院"),
    ("credit", "DEF"): ("买方逾期未付货款", "借款人逾期未还款，已超过90天"),
}
LOSSES_EN = {
    ("motor", "COLL"): ("Rear-end collision, rear bumper damaged", "Hit a pillar while reversing",
                        "Collision at junction with an e-bike"),
    ("motor", "THEFT"): ("Vehicle stolen overnight, police report filed",),
    ("motor", "FIRE"): ("Engine compartment fire",),
    ("motor", "FLOOD"): ("Flash flood, engine water damage",),
    ("motor", "STORM"): ("Hail damage to windscreen",),
    ("motor", "INJ"): ("Third party injured, hospitalised", "Passenger injured, treated in hospital"),
    ("motor", "TPL"): ("Third-party vehicle repaired after collision, liability accepted",),
    ("property", "FIRE"): ("Electrical fire in warehouse",),
    ("property", "FLOOD"): ("Warehouse flooded, stock damaged", "Burst pipe, floor water damage"),
    ("property", "STORM"): ("Typhoon damaged roof",),
    ("property", "THEFT"): ("Burglary, contents stolen",),
    ("liability", "TPL"): ("Customer slipped in store",),
    ("liability", "INJ"): ("Employee injured at work",),
    ("marine", "COLL"): ("Vessel struck the quay while berthing",),
    ("agri", "FLOOD"): ("Paddy fields flooded",),
    ("health", "ILL"): ("Hospitalised for pneumonia", "Appendectomy"),
    ("health", "INJ"): ("Fractured wrist in a fall",),
    ("credit", "DEF"): ("Buyer defaulted on payment, 90 days overdue", "Borrower in default"),
}
OTHER_LOSS_ZH = ("其他原因造成损失，正在查勘",)
OTHER_LOSS_EN = ("Other loss, under investigation",)
ONE_DAY_PRODUCT_ZH = "一日游旅行意外险"
ONE_DAY_PRODUCT_EN = "Day-trip Accident Cover"

# Spreadsheet formulas that a member's export lets through (CSV injection).
FORMULAS = (
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://example.com/claim?id=1","详情")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C notepad'!A0",
    "=1+2",
    "-2+3+cmd|' /C calc'!A0",
)


def product_name(r: random.Random, line: str, chinese_share: float, one_day: bool = False) -> str:
    chinese = r.random() < chinese_share
    if one_day:
        return ONE_DAY_PRODUCT_ZH if chinese else ONE_DAY_PRODUCT_EN
    names = PRODUCTS_ZH if chinese else PRODUCTS_EN
    return pick_one(r, names.get(line) or names["EPROP"])


def loss_description(r: random.Random, line: str, cause: str, chinese_share: float) -> str:
    key = (LINE_GROUPS.get(line, "property"), cause)
    if r.random() < chinese_share or key not in LOSSES_EN:
        return pick_one(r, LOSSES_ZH.get(key, OTHER_LOSS_ZH))
    return pick_one(r, LOSSES_EN[key])
