"""Contract wording in zh-CN and English. Placeholders are ContractData fields plus the
formatted `rent`, `deposit`, `cycle`, `proration` and `co_tenants`."""

from __future__ import annotations

from typing import Any

ZH: dict[str, Any] = {
    "title": "房屋租赁合同",
    "number": "合同编号 {n}    出具日期 {issued}",
    "none": "无",
    "cycle": {1: "每月", 2: "每两个月", 3: "每三个月（季付）", 6: "每六个月", 12: "每年"},
    "proration": {
        "calendar_days": "按当月实际天数折算",
        "thirty_day": "按每月30天折算",
        "annual_365": "按年租金÷365天折算",
    },
    "sections": [
        ("一、当事人", "出租方（甲方）：{landlord}\n承租方（乙方）：{tenant_name}"
                      "（证件号码 {tenant_id_masked}）\n共同承租人：{co_tenants}"),
        ("二、房屋", "{property_name}{building}{unit_code}室，地址：{address}；"
                    "建筑面积 {area_m2} 平方米，户型 {layout}；居住人数 {occupants} 人。"),
        ("三、租期", "自 {start} 起至 {end} 止。"),
        ("四、租金与支付", "月租金人民币 {rent} 元，支付周期：{cycle}；每期租金于该期开始前 "
                          "{due_days_before} 日内支付。不足一个月的租金{proration}。"
                          "逾期付款按滞纳金规则 {late_fee_policy} 执行。"),
        ("五、押金", "押金人民币 {deposit} 元。租赁结束、乙方交还房屋并结清费用后，甲方应于"
                    "3个工作日内退还押金；仅可扣除未付租金、费用、应分摊的水电费及有明细和"
                    "理由的房屋损坏赔偿（《住房租赁条例》）。"),
        ("六、个人信息", "甲方仅为履行本合同处理乙方个人信息，加密保存，"
                        "依法保护（《个人信息保护法》）。"),
    ],
    "signatures": "甲方（盖章）：________________    日期：__________\n"
                  "乙方（签字）：________________    日期：__________",
}  # fmt: skip

EN: dict[str, Any] = {
    "title": "Residential Lease Agreement",
    "number": "Contract no. {n}    Issued {issued}",
    "none": "none",
    "cycle": {1: "monthly", 2: "every 2 months", 3: "quarterly", 6: "every 6 months",
              12: "yearly"},
    "proration": {
        "calendar_days": "prorated by the actual days of that month",
        "thirty_day": "prorated on a 30-day month",
        "annual_365": "prorated as annual rent / 365 per day",
    },
    "sections": [
        ("1. Parties", "Landlord: {landlord}\nTenant: {tenant_name} (ID {tenant_id_masked})\n"
                       "Co-tenants: {co_tenants}"),
        ("2. Premises", "Unit {unit_code}, {building}, {property_name}, {address}; "
                        "{area_m2} m², layout {layout}; {occupants} occupant(s)."),
        ("3. Term", "From {start} to {end} inclusive."),
        ("4. Rent", "Monthly rent CNY {rent}, payable {cycle}; each payment is due "
                    "{due_days_before} days before its period starts. Part months are "
                    "{proration}. Late payment: late-fee policy {late_fee_policy}."),
        ("5. Deposit", "Deposit CNY {deposit}, returned within 3 working days after the tenant "
                       "hands back the unit and settles all charges; deductions only for unpaid "
                       "rent and charges, final prorated utilities and itemised, reasoned damage "
                       "(Housing Rental Regulations)."),
        ("6. Personal data", "The landlord processes the tenant's personal data only to perform "
                             "this agreement and keeps it encrypted (PIPL)."),
    ],
    "signatures": "Landlord: ________________    Date: __________\n"
                  "Tenant:   ________________    Date: __________",
}  # fmt: skip

TEXT: dict[str, dict[str, Any]] = {"zh-CN": ZH, "en": EN}
