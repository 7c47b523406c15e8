#!/usr/bin/env python3
"""Generate the fictional sample corpus under data/ for the RAG chatbot demo.

Everything here is invented for this project: "Helios Analytics Ltd." and all
people, numbers, phone numbers and addresses are fictional. UK phone numbers
use the Ofcom drama range (0113 496 0xxx), Canadian ones the 555-01xx range and
e-mail addresses the reserved ``.example`` top-level domain.

The output is deterministic: there is no randomness, and document metadata
(PDF info dates, DOCX/XLSX core properties and ZIP entry timestamps) is pinned
to fixed dates, so re-running the script produces byte-identical files.

Usage:
    python scripts/make_sample_data.py           # (re)create data/ and verify
    python scripts/make_sample_data.py --no-check  # create only
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import unicodedata
import zipfile
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

DOMAIN = "heliosanalytics.example"
COMPANY = "Helios Analytics Ltd."

# Fixed phone numbers (fictional ranges).
SERVICE_DESK_UK = "+44 113 496 0123"
SERVICE_DESK_TORONTO = "+1 416 555 0142"
SECURITY_HOTLINE = "+44 113 496 0999"
HR_PARENTAL_PHONE = "+44 113 496 0214"


# ---------------------------------------------------------------------------
# People (single source of truth for employees.csv and salaries.csv)
# ---------------------------------------------------------------------------
# name, department, job_title, office, manager, start_date, band, salary_gbp, bonus_pct
PEOPLE = [
    ("Margaret Okafor", "Executive Office", "Chief Executive Officer", "Leeds", "", "2014-03-03", "B6", 210000, 30),
    ("Samuel Osei", "Consulting", "Director of Consulting", "Leeds", "Margaret Okafor", "2016-04-18", "B5", 124000, 15),
    ("Tomasz Kowalczyk", "HR", "HR Director", "Leeds", "Margaret Okafor", "2016-09-05", "B5", 108000, 15),
    ("Priya Raman", "Finance", "Chief Financial Officer", "Leeds", "Margaret Okafor", "2017-01-09", "B6", 168000, 25),
    ("Daniel Ferreira", "IT", "Head of IT", "Leeds", "Margaret Okafor", "2017-05-22", "B5", 102000, 15),
    ("Rahul Menon", "Engineering", "VP Engineering", "Leeds", "Margaret Okafor", "2018-02-12", "B6", 148000, 20),
    ("Catherine Doyle", "Sales", "Sales Director", "Leeds", "Margaret Okafor", "2018-05-08", "B5", 112000, 25),
    ("Eleanor Voss", "Legal", "General Counsel", "Leeds", "Margaret Okafor", "2018-07-16", "B5", 131000, 15),
    ("Lena Hoffmann", "Engineering", "Data Engineering Manager", "Berlin", "Rahul Menon", "2018-10-01", "B4", 86500, 12.5),
    ("Fiona Campbell", "Consulting", "Principal Consultant", "Leeds", "Samuel Osei", "2018-11-05", "B4", 84000, 12.5),
    ("Marcus Chen", "Engineering", "Data Engineering Manager", "Toronto", "Rahul Menon", "2019-01-14", "B4", 84500, 12.5),
    ("James Whitfield", "Engineering", "Platform Engineering Manager", "Leeds", "Rahul Menon", "2019-03-25", "B4", 83000, 12.5),
    ("Sophie Brennan", "HR", "HR Business Partner", "Leeds", "Tomasz Kowalczyk", "2019-04-15", "B3", 54500, 10),
    ("Katrin Vogel", "Consulting", "Consulting Manager", "Berlin", "Samuel Osei", "2019-05-20", "B4", 76000, 12.5),
    ("Noah Williams", "Consulting", "Consulting Manager", "Toronto", "Samuel Osei", "2019-06-24", "B4", 74500, 12.5),
    ("Oliver Grant", "Finance", "Financial Controller", "Leeds", "Priya Raman", "2019-08-19", "B4", 79000, 12.5),
    ("Benjamin Hale", "Sales", "Senior Account Executive", "Leeds", "Catherine Doyle", "2019-09-09", "B3", 61000, 20),
    ("Kwame Mensah", "IT", "IT Security Lead", "Leeds", "Daniel Ferreira", "2020-01-13", "B4", 78500, 12.5),
    ("Maximilian Krüger", "Engineering", "Data Engineer", "Berlin", "Lena Hoffmann", "2020-03-02", "B2", 49500, 7.5),
    ("Amelia Hughes", "Consulting", "Senior Consultant", "Leeds", "Fiona Campbell", "2020-04-06", "B3", 58000, 10),
    ("Emily Carter", "Engineering", "Senior Software Engineer", "Leeds", "James Whitfield", "2020-06-01", "B3", 66500, 10),
    ("Grace Adeyemi", "Legal", "Data Protection Officer", "Leeds", "Eleanor Voss", "2020-09-14", "B4", 72000, 12.5),
    ("Anna Schulz", "IT", "IT Support Engineer", "Berlin", "Daniel Ferreira", "2020-10-05", "B2", 41000, 7.5),
    ("Julia Becker", "Sales", "Account Executive", "Berlin", "Catherine Doyle", "2020-10-19", "B2", 47500, 20),
    ("Mei Lin Zhou", "Finance", "FP&A Analyst", "Leeds", "Oliver Grant", "2020-11-02", "B2", 44000, 7.5),
    ("Lukas Fischer", "Consulting", "Senior Consultant", "Berlin", "Katrin Vogel", "2020-11-16", "B3", 59500, 10),
    ("Jonas Weber", "HR", "HR Business Partner", "Berlin", "Tomasz Kowalczyk", "2021-02-01", "B3", 53000, 10),
    ("Rachel Ibbotson", "Consulting", "Training Programme Lead", "Leeds", "Samuel Osei", "2021-03-15", "B4", 71000, 12.5),
    ("Sara Lindqvist", "Engineering", "Senior Data Engineer", "Berlin", "Lena Hoffmann", "2021-05-17", "B3", 64000, 10),
    ("Olivia Singh", "Consulting", "Senior Consultant", "Toronto", "Noah Williams", "2021-06-07", "B3", 57500, 10),
    ("Aiden MacLeod", "Engineering", "Senior Data Engineer", "Toronto", "Marcus Chen", "2021-07-05", "B3", 63500, 10),
    ("Ruth Gallagher", "Consulting", "Consultant", "Berlin", "Katrin Vogel", "2021-09-13", "B2", 45500, 7.5),
    ("Tariq Hussain", "Engineering", "Software Engineer", "Leeds", "James Whitfield", "2022-01-10", "B2", 50500, 7.5),
    ("Ryan Thompson", "Sales", "Account Executive", "Toronto", "Catherine Doyle", "2022-03-07", "B2", 46000, 20),
    ("George Bennett", "Consulting", "Consultant", "Leeds", "Fiona Campbell", "2022-05-09", "B2", 43500, 7.5),
    ("Felix Braun", "Finance", "Accountant", "Berlin", "Oliver Grant", "2022-09-01", "B2", 45000, 7.5),
    ("Yusuf Demir", "Engineering", "Data Engineer", "Berlin", "Lena Hoffmann", "2022-10-10", "B2", 48000, 7.5),
    ("Henrik Larsen", "Legal", "Commercial Counsel", "Berlin", "Eleanor Voss", "2022-11-07", "B3", 68000, 10),
    ("Arjun Nair", "Engineering", "Machine Learning Engineer", "Leeds", "James Whitfield", "2023-02-13", "B3", 62000, 10),
    ("Chloe Tremblay", "HR", "People Operations Coordinator", "Toronto", "Tomasz Kowalczyk", "2023-06-12", "B1", 34000, 5),
    ("Liam O'Connor", "IT", "Service Desk Analyst", "Leeds", "Daniel Ferreira", "2023-09-04", "B1", 31000, 5),
    ("Emma Dubois", "Consulting", "Consultant", "Toronto", "Noah Williams", "2023-09-18", "B2", 42000, 7.5),
    ("Nadia Haddad", "Engineering", "Data Engineer", "Toronto", "Marcus Chen", "2023-11-20", "B2", 46500, 7.5),
    ("Clara Martínez", "Engineering", "Junior Data Engineer", "Berlin", "Lena Hoffmann", "2024-01-08", "B1", 37000, 5),
    ("Hannah Moss", "Finance", "Accounts Payable Officer", "Leeds", "Oliver Grant", "2024-02-05", "B1", 32500, 5),
    ("Ethan Roberts", "IT", "IT Support Engineer", "Toronto", "Daniel Ferreira", "2024-03-18", "B2", 39500, 7.5),
    ("Mateo Rossi", "Sales", "Marketing Manager", "Leeds", "Catherine Doyle", "2024-05-13", "B3", 55000, 10),
]


def email_for(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = ascii_name.replace("'", "").lower()
    return ".".join(ascii_name.split()) + "@" + DOMAIN


def employee_rows():
    """People sorted by start date; ids are assigned in that order."""
    people = sorted(PEOPLE, key=lambda p: (p[5], p[0]))
    rows = []
    for i, p in enumerate(people, start=1):
        rows.append({
            "employee_id": f"HA{1000 + i}",
            "name": p[0], "department": p[1], "job_title": p[2], "office": p[3],
            "manager": p[4], "start_date": p[5], "band": p[6], "salary_gbp": p[7],
            "bonus_pct": p[8], "email": email_for(p[0]),
        })
    return rows


# ---------------------------------------------------------------------------
# Finance figures (single source of truth for the PDF report and the budget)
# All money amounts in GBP thousands.
# ---------------------------------------------------------------------------
SEGMENTS = ["Consulting", "Platform", "Training"]
REV_Q3_2026 = {"Consulting": 6420, "Platform": 4180, "Training": 960}
REV_Q3_2025 = {"Consulting": 5870, "Platform": 3210, "Training": 1040}
REV_ACTUAL_Q1_2026 = 10480
REV_ACTUAL_Q2_2026 = 10970
OPEX_ACTUAL_Q1_2026 = 7990
OPEX_ACTUAL_Q2_2026 = 8210

DEPARTMENTS = ["Consulting", "Engineering", "Sales", "IT", "Finance", "HR", "Legal", "Executive Office"]
OPEX_Q3_2026 = {"Consulting": 3850, "Engineering": 2140, "Sales": 1020, "IT": 410,
                "Finance": 290, "HR": 260, "Legal": 180, "Executive Office": 220}
OPEX_Q3_2025 = {"Consulting": 3560, "Engineering": 1890, "Sales": 930, "IT": 380,
                "Finance": 275, "HR": 240, "Legal": 170, "Executive Office": 205}
HEADCOUNT_SEP_2026 = {"Consulting": 62, "Engineering": 56, "Sales": 24, "IT": 12,
                      "Finance": 10, "HR": 9, "Legal": 5, "Executive Office": 2}
HEADCOUNT_SEP_2025_TOTAL = 163
HEADCOUNT_BY_OFFICE_SEP_2026 = {"Leeds": 100, "Berlin": 44, "Toronto": 36}

QUARTERS = ["Q1 2026", "Q2 2026", "Q3 2026", "Q4 2026"]
BUDGET_REV = {
    "Consulting": [6000, 6200, 6300, 6700],
    "Platform": [3550, 3800, 4050, 4200],
    "Training": [1050, 1100, 950, 1100],
}
BUDGET_STAFF = [6120, 6270, 6430, 6640]
BUDGET_NONSTAFF = [1930, 1980, 2030, 2100]
BUDGET_CAPEX = [310, 240, 220, 330]
BUDGET_HEADCOUNT = [172, 176, 180, 188]

# FY2026 budget by department: owner, {office: year-end headcount}, staff costs, non-staff costs
BUDGET_DEPT = [
    ("Consulting", "Samuel Osei", {"Leeds": 32, "Berlin": 16, "Toronto": 16}, 12100, 3300),
    ("Engineering", "Rahul Menon", {"Leeds": 27, "Berlin": 18, "Toronto": 14}, 6800, 1800),
    ("Sales", "Catherine Doyle", {"Leeds": 14, "Berlin": 6, "Toronto": 6}, 2900, 1200),
    ("IT", "Daniel Ferreira", {"Leeds": 8, "Berlin": 2, "Toronto": 2}, 950, 700),
    ("Finance", "Priya Raman", {"Leeds": 8, "Berlin": 2}, 900, 280),
    ("HR", "Tomasz Kowalczyk", {"Leeds": 6, "Berlin": 2, "Toronto": 1}, 760, 290),
    ("Legal", "Eleanor Voss", {"Leeds": 4, "Berlin": 1}, 560, 160),
    ("Executive Office", "Margaret Okafor", {"Leeds": 3}, 490, 310),
]

FY_GUIDANCE_REVENUE = 45300
CASH_SEP_2026_M = "14.8"
PLATFORM_ARR_M = "17.2"
PLATFORM_CUSTOMERS = (214, 176)
UTILISATION = (78, 74)
LEARNERS = (1420, 1610)


def budget_quarter_totals():
    rev = [sum(BUDGET_REV[s][q] for s in SEGMENTS) for q in range(4)]
    opex = [BUDGET_STAFF[q] + BUDGET_NONSTAFF[q] for q in range(4)]
    profit = [rev[q] - opex[q] for q in range(4)]
    return rev, opex, profit


def check_finance_consistency():
    rev, opex, _ = budget_quarter_totals()
    assert sum(rev) == 45000, sum(rev)
    assert sum(opex) == 33500, sum(opex)
    assert sum(d[3] for d in BUDGET_DEPT) == sum(BUDGET_STAFF)
    assert sum(d[4] for d in BUDGET_DEPT) == sum(BUDGET_NONSTAFF)
    assert sum(sum(d[2].values()) for d in BUDGET_DEPT) == BUDGET_HEADCOUNT[-1]
    assert sum(HEADCOUNT_SEP_2026.values()) == 180 == sum(HEADCOUNT_BY_OFFICE_SEP_2026.values())
    assert BUDGET_HEADCOUNT[2] == 180
    assert set(OPEX_Q3_2026) == set(DEPARTMENTS) == set(d[0] for d in BUDGET_DEPT)


# ---------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------
def gbp_m(k: int, places: int = 2) -> str:
    """GBP thousands -> '£11.56m' (half-up rounding, no float surprises)."""
    q = Decimal(1).scaleb(-places)
    return "£" + str((Decimal(k) / 1000).quantize(q, rounding=ROUND_HALF_UP)) + "m"


def pct(new: int, old: int) -> str:
    v = (Decimal(new - old) * 100 / Decimal(old)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{'+' if v >= 0 else ''}{v}%"


def pct_abs(new: int, old: int) -> str:
    """Unsigned percentage change, for prose such as 'up 9.4%'."""
    return pct(new, old).lstrip("+-")


def pct_of(part: int, whole: int) -> str:
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) + "%"


def thousands(k: int) -> str:
    return f"{k:,}"


def signed(k: int) -> str:
    return f"{k:+,}"


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text.lstrip("\n"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def normalize_zip(path: Path, modified_iso: str) -> None:
    """Rewrite an OOXML zip with fixed entry timestamps and a fixed
    dcterms:modified, so DOCX/XLSX output is byte-for-byte reproducible."""
    with zipfile.ZipFile(path) as zin:
        entries = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for name, blob in entries:
            if name == "docProps/core.xml":
                blob = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + modified_iso.encode() + rb"\g<2>",
                    blob,
                )
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zout.writestr(info, blob)


# ---------------------------------------------------------------------------
# data/hr/parental_leave_policy.md
# ---------------------------------------------------------------------------
PARENTAL_LEAVE_MD = f"""
# Parental Leave Policy

**{COMPANY}** | Policy owner: Tomasz Kowalczyk, HR Director | Version 3.2 | Effective 1 January 2026 | Next review: December 2026

## 1. Purpose and scope

This policy explains the leave and pay Helios Analytics offers when you become a parent through birth, adoption or surrogacy. It applies to all employees on permanent or fixed-term contracts in our Leeds, Berlin and Toronto offices, whether full-time or part-time. It does not cover contractors or agency workers, who should speak to their agency.

Where local law in Germany or Canada gives you more than this policy, you receive whichever is more favourable to you (see section 8). Nothing in this policy reduces your statutory rights.

## 2. Parental leave at a glance

| Leave type | Weeks | Pay |
|---|---|---|
| Maternity leave (birth parent) | 52 | Weeks 1-20 at 100% of basic salary; weeks 21-33 at 50% of basic salary; weeks 34-39 statutory pay only; weeks 40-52 unpaid |
| Paternity / partner leave | 6 | 100% of basic salary for all 6 weeks |
| Adoption leave (primary adopter) | 52 | Same as maternity leave |
| Adoption leave (secondary adopter) | 6 | 100% of basic salary for all 6 weeks |
| Neonatal care leave | Up to 12 (in addition) | 100% of basic salary |
| Pregnancy loss leave | 2 | 100% of basic salary |

For a full-time employee working five days a week, one week of leave equals five working days. In working days, a full-time employee is therefore entitled to:

- **Maternity leave / primary adoption leave:** 260 working days, of which 100 days are at full pay and 65 days at half pay.
- **Paternity / partner leave and secondary adoption leave:** 30 working days, all at full pay.
- **Pregnancy loss leave:** 10 working days at full pay.

Part-time employees receive the same number of weeks; their days and pay are calculated pro rata as described in section 7.

## 3. Eligibility for enhanced pay

The right to take leave starts on your first day of employment. The enhanced (company) pay levels in section 2 apply once you have completed **26 weeks of continuous service** by the end of the 15th week before the expected week of childbirth, or by the week in which you are notified of being matched with a child for adoption. If you have less service than this, you can still take the full leave, but you will receive statutory pay only (or the local statutory benefit in Berlin or Toronto).

## 4. Maternity leave

You can start maternity leave at any time from 11 weeks before the expected week of childbirth. Leave starts automatically if you are absent for a pregnancy-related reason in the four weeks before the expected week of childbirth. You must take at least two weeks of leave immediately after the birth.

During maternity leave you may work up to **10 paid keeping-in-touch (KIT) days** without ending your leave. KIT days are voluntary, must be agreed with your manager and are paid at your normal daily rate in addition to any maternity pay.

## 5. Paternity and partner leave

Partner leave is available to the father, partner or co-parent of a child, regardless of gender. You can take the 6 weeks in one block or in up to three blocks of at least one week each, at any time within 12 months of the birth or placement. Partner leave is paid at 100% of basic salary throughout.

## 6. Adoption and surrogacy

If you adopt, the primary adopter receives the same leave and pay as maternity leave and the secondary adopter receives the same as partner leave. Intended parents in a surrogacy arrangement who expect to apply for a parental order follow the adoption rules. Leave can start up to 14 days before the expected placement date. You may also take paid time off for up to five pre-adoption appointments.

## 7. Part-time staff

Part-time employees have exactly the same rights under this policy as full-time employees, adjusted pro rata:

- **Number of weeks:** the same as full-time colleagues. A part-time employee is entitled to 52 weeks of maternity leave and 6 weeks of partner leave.
- **Working days:** your entitlement in days is the number of weeks multiplied by your contracted working days per week. For example, an employee working 3 days a week (0.6 FTE) receives 18 working days of partner leave (6 weeks x 3 days), and an employee working 4 days a week (0.8 FTE) receives 24 working days.
- **Maternity leave in days:** an employee working 3 days a week is entitled to 156 working days of maternity leave, of which 60 days are at full pay and 39 days at half pay.
- **Pay:** enhanced pay is calculated on your actual contracted basic salary. If you work 0.6 FTE, "100% of basic salary" means 100% of your 0.6 FTE salary.
- **Variable hours:** if your hours vary, HR uses your average contracted hours over the previous 12 weeks.
- **KIT days:** part-time staff may also work up to 10 KIT days, paid at their hourly rate for the hours actually worked.
- **Eligibility:** the same 26-week service threshold applies to part-time and full-time staff.

If you would like to return from leave on a part-time or compressed-hours basis, you can make a flexible working request from your first day of employment. HR will respond within four weeks.

## 8. Berlin and Toronto

Employees in **Berlin** are covered by the German maternity protection rules (Mutterschutz: 6 weeks before and 8 weeks after birth) and may take parental leave (Elternzeit) of up to three years per child. Helios tops up Mutterschaftsgeld and Elterngeld so that you receive the Helios pay levels for the first 20 weeks (birth parent) or the first 6 weeks (partner).

Employees in **Toronto** are covered by the Ontario Employment Standards Act (17 weeks of pregnancy leave plus up to 61 weeks of parental leave). Helios tops up Employment Insurance benefits to the Helios pay levels for the same periods.

## 9. Returning to work

You have the right to return to the same job after leave. To help you settle back in, you may use a **phased return**: for your first 4 weeks back you can work 80% of your contracted hours while receiving 100% of your pay.

If you resign within 3 months of returning from maternity or adoption leave, you will be asked to repay the enhanced pay you received above the statutory amount. This does not apply to partner leave or to redundancy.

## 10. How to apply

1. Tell your line manager as early as you feel comfortable, so that cover can be planned.
2. Submit the **Parental Leave Request** form in PeopleHub (Time Off > Parental leave):
   - maternity leave: at least 15 weeks before the expected week of childbirth;
   - partner leave: at least 8 weeks before the first day of leave you want to take;
   - adoption leave: within 7 days of being notified that you have been matched with a child.
3. Attach your evidence: the MATB1 certificate (UK), the doctor's or midwife's certificate of the expected date of birth (Berlin or Toronto), or the matching certificate from your adoption agency.
4. HR will confirm your leave dates, pay schedule and expected return date in writing within 10 working days.
5. Changes to your pay are processed in the monthly payroll if HR receives them by the 10th of the month.

You can change your start date by giving at least 28 days' notice through the same form.

## 11. Contact

The contact person for all parental leave questions is **Sophie Brennan, HR Business Partner** (sophie.brennan@{DOMAIN}, {HR_PARENTAL_PHONE}). In Berlin you can also contact Jonas Weber (jonas.weber@{DOMAIN}) and in Toronto Chloe Tremblay (chloe.tremblay@{DOMAIN}). Escalations go to Tomasz Kowalczyk, HR Director.
"""


# ---------------------------------------------------------------------------
# data/hr/employee_handbook.docx
# ---------------------------------------------------------------------------
HOLIDAY_TABLE = [
    ("Years of service", "Annual leave (days, full-time)", "Maximum carry-over"),
    ("Less than 2 years", "25", "5 days"),
    ("2 to 4 years", "26", "5 days"),
    ("5 to 9 years", "28", "5 days"),
    ("10 years or more", "30", "8 days"),
]

# Each entry: ("h1"|"h2"|"p"|"bullets"|"table", content)
HANDBOOK = [
    ("title", "Helios Analytics Employee Handbook"),
    ("p", "Version 5.0, effective 1 February 2026. Owner: Tomasz Kowalczyk, HR Director. "
          "Applies to all employees of Helios Analytics Ltd. in Leeds, Berlin and Toronto."),
    ("h1", "1. Welcome"),
    ("p", "Helios Analytics helps organisations turn their data into decisions. We are around 180 people "
          "working from our headquarters in Leeds and our offices in Berlin and Toronto, led by our Chief "
          "Executive Officer, Margaret Okafor. This handbook sets out the everyday rules and benefits that "
          "apply to you. Where local employment law gives you more than the handbook, local law applies. "
          "Detailed topics have their own documents: parental leave is covered by the Parental Leave Policy, "
          "and IT matters such as VPN access, passwords and laptops are covered by the IT Handbook."),
    ("p", "Most requests described below are made in PeopleHub, our HR portal, which you can reach from the "
          "intranet home page. If anything in this handbook is unclear, ask your manager or your HR Business "
          "Partner."),

    ("h1", "2. Working hours"),
    ("h2", "2.1 Standard hours"),
    ("p", "The standard full-time working week is 37.5 hours, Monday to Friday, in all three offices. "
          "Core hours are 10:00 to 16:00 local time, when everyone is expected to be available for meetings "
          "and client work. Outside core hours you may start between 07:30 and 10:00 and finish between "
          "16:00 and 19:00, as long as you work your contracted hours over the week. You are entitled to an "
          "unpaid lunch break of up to one hour, and you must take at least 30 minutes away from your desk "
          "if you work more than six hours in a day."),
    ("h2", "2.2 Overtime and time off in lieu"),
    ("p", "We do not pay overtime. Employees in bands B1 to B3 who are asked by their manager to work "
          "beyond their contracted hours receive time off in lieu (TOIL) at the same rate, hour for hour. "
          "Overtime must be approved by your manager in advance and recorded in PeopleHub, and TOIL must "
          "be taken within 3 months or it lapses. In Berlin, working time may not exceed 10 hours in any "
          "single day, in line with the German Working Hours Act."),
    ("h2", "2.3 Sickness absence"),
    ("p", "If you are unwell, tell your manager by 09:30 on the first day of absence and record the absence "
          "in PeopleHub. You can self-certify for up to 7 calendar days; after that we need a fit note or "
          "local equivalent (in Berlin, a doctor's certificate is required from the fourth calendar day). "
          "Helios pays full salary for up to 20 working days of sickness absence in any rolling "
          "12-month period, after which statutory sick pay or the local equivalent applies."),

    ("h1", "3. Remote and hybrid work"),
    ("h2", "3.1 Hybrid pattern"),
    ("p", "Helios is a hybrid company. You are expected to work from your office at least 2 days per week. "
          "Each team agrees one fixed anchor day on which the whole team is in the office; the rest of your "
          "office days are up to you. Consultants working at client sites count those days as office days. "
          "New starters spend their first two weeks mostly in the office to meet their team."),
    ("h2", "3.2 Home working"),
    ("p", "When working from home you must have a safe, quiet workspace and a reliable internet connection, "
          "and you must follow the IT Handbook rules on VPN use and device security. To help set up your "
          "workspace, Helios pays a one-off home office allowance of GBP 400 (EUR 460 in Berlin, CAD 690 in "
          "Toronto) and a monthly broadband contribution of GBP 20 (EUR 23, CAD 35), paid through payroll. "
          "Claim the one-off allowance through the Expenses app within your first 6 months."),
    ("h2", "3.3 Working from abroad"),
    ("p", "You may work from another country for up to 20 working days per calendar year, for example to "
          "extend a visit to family. Requests must be submitted in PeopleHub at least 4 weeks in advance and "
          "approved by your manager and HR, who check tax, immigration and data protection rules. Working "
          "from abroad is not permitted in countries on the IT Security travel restriction list."),

    ("h1", "4. Holidays"),
    ("h2", "4.1 Annual leave entitlement"),
    ("p", "The holiday year runs from 1 January to 31 December. Your annual leave entitlement grows with your "
          "length of service, as shown in the table below. The entitlement is in addition to the public "
          "holidays of the country where your office is located. Entitlement for a new length-of-service "
          "band starts on 1 January after your service anniversary."),
    ("table", HOLIDAY_TABLE),
    ("p", "Part-time employees receive annual leave pro rata to their contracted working days. For example, "
          "an employee with less than 2 years' service who works 3 days a week receives 15 days "
          "(25 x 3/5). Every employee also receives one additional paid day off in the month of their "
          "birthday, which cannot be carried over."),
    ("h2", "4.2 Booking and carrying over leave"),
    ("p", "Book annual leave in PeopleHub. Your manager will respond within 3 working days. For absences of "
          "more than 3 consecutive working days, please give at least 2 weeks' notice; for more than 10 "
          "consecutive working days, give at least 6 weeks' notice. You may carry over unused days up to the "
          "limit in the table. Carried-over days must be used by 31 March of the following year, after which "
          "they are lost. Holiday cannot be exchanged for pay except when you leave Helios."),

    ("h1", "5. Expenses"),
    ("h2", "5.1 Submitting a claim"),
    ("p", "Business expenses are reimbursed when they are necessary, reasonable and approved. Submit claims in "
          "the Expenses app in PeopleHub within 30 days of the expense, with an itemised receipt for every "
          "item over GBP 10. Claims approved by the 20th of the month are paid with that month's salary; "
          "later claims are paid the following month. Questions about payments go to the Finance team at "
          f"expenses@{DOMAIN}."),
    ("h2", "5.2 Limits and approvals"),
    ("bullets", [
        "Hotels: up to GBP 180 per night in London, GBP 120 elsewhere in the UK, EUR 150 in Berlin and "
        "CAD 230 in Toronto, including breakfast.",
        "Meals while travelling: up to GBP 35 per day (EUR 40, CAD 60), excluding alcohol.",
        "Rail: standard class. Flights: economy; premium economy only for flights longer than 6 hours.",
        "Private car: 45p per mile for the first 10,000 business miles in a tax year (Berlin: EUR 0.30 per km; "
        "Toronto: CAD 0.70 per km).",
        "Client entertainment must be approved in advance by your department head.",
        "Approval: your line manager approves claims up to GBP 1,000; claims above GBP 1,000 also need "
        "approval from your department head and from Finance.",
    ]),

    ("h1", "6. Code of conduct"),
    ("h2", "6.1 Our standards"),
    ("p", "We expect everyone at Helios to act with honesty, respect and care for our clients' data. "
          "Bullying, harassment and discrimination of any kind are not tolerated, whether in the office, at "
          "client sites, at social events or online. Treat client information as confidential at all times "
          "and use it only for the purpose it was shared with us. Do not post about clients or confidential "
          "projects on social media."),
    ("h2", "6.2 Gifts, hospitality and conflicts of interest"),
    ("p", "You may accept gifts or hospitality worth up to GBP 50 (EUR 60, CAD 90) without approval. Anything "
          "above that value must be declared in the gifts register kept by the Legal team within 5 working "
          "days, and gifts over GBP 150 must be politely declined. Cash or vouchers must never be accepted. "
          "All employees complete an annual conflict of interest declaration in PeopleHub by 31 January, and "
          "must declare any new conflict, such as a second job or a family link to a supplier, as soon as "
          "it arises."),
    ("h2", "6.3 Speaking up"),
    ("p", "If you see something that may be illegal, unsafe or against this code, please speak up. You can "
          "raise concerns with your manager, with HR, or with our General Counsel, Eleanor Voss. You can also "
          f"write to ethics@{DOMAIN}, which is read only by the Legal team, or use the anonymous "
          "Speak Up form on the intranet. Helios will not tolerate retaliation against anyone who raises a "
          "concern in good faith."),
    ("h2", "6.4 Breaches"),
    ("p", "Breaches of this code are handled under the disciplinary procedure and may lead to dismissal in "
          "serious cases. Data protection breaches must be reported immediately as described in the IT "
          "Handbook."),

    ("h1", "7. Learning and development"),
    ("p", "Every employee has an annual learning budget of GBP 1,000 (EUR 1,170, CAD 1,860) and 3 paid "
          "learning days per calendar year, which can be used for courses, conferences, certifications or "
          "books related to your role. Agree how you will use them with your manager during your annual "
          "objectives review in January, then book courses through the Learning section of PeopleHub. "
          "Unused budget and learning days do not carry over to the next year. Helios Academy courses are "
          "free for employees and do not count against your budget. If you leave Helios within 12 months "
          "of completing a course that cost more than GBP 2,000, you may be asked to repay part of the cost."),
]


def make_handbook_docx(path: Path) -> None:
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    styles = doc.styles
    styles["Normal"].font.name = "Calibri"
    styles["Normal"].font.size = Pt(11)

    for kind, content in HANDBOOK:
        if kind == "title":
            doc.add_heading(content, level=0)
        elif kind == "h1":
            doc.add_heading(content, level=1)
        elif kind == "h2":
            doc.add_heading(content, level=2)
        elif kind == "p":
            doc.add_paragraph(content)
        elif kind == "bullets":
            for item in content:
                doc.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            table = doc.add_table(rows=len(content), cols=len(content[0]))
            table.style = "Table Grid"
            for r, row in enumerate(content):
                for c, value in enumerate(row):
                    cell = table.cell(r, c)
                    cell.text = value
                    if r == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
        else:
            raise ValueError(kind)

    cp = doc.core_properties
    cp.title = "Helios Analytics Employee Handbook"
    cp.author = "Tomasz Kowalczyk"
    cp.last_modified_by = "Tomasz Kowalczyk"
    cp.subject = "Employee handbook"
    cp.keywords = "HR; handbook; holidays; expenses; remote work; code of conduct"
    cp.category = "HR"
    cp.comments = "Fictional sample document generated for the RAG chatbot demo."
    cp.revision = 5
    cp.created = datetime(2026, 1, 20, 9, 0, 0)
    cp.modified = datetime(2026, 2, 1, 9, 0, 0)
    cp.last_printed = datetime(2026, 2, 1, 9, 0, 0)
    doc.save(path)
    normalize_zip(path, "2026-02-01T09:00:00Z")


# ---------------------------------------------------------------------------
# data/hr/employees.csv and data/hr_restricted/salaries.csv
# ---------------------------------------------------------------------------
def write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(row)


def make_people_csvs() -> None:
    rows = employee_rows()
    write_csv(
        DATA / "hr" / "employees.csv",
        ["employee_id", "name", "department", "job_title", "office", "manager", "start_date", "email"],
        [[r[k] for k in ("employee_id", "name", "department", "job_title", "office", "manager",
                         "start_date", "email")] for r in rows],
    )
    write_csv(
        DATA / "hr_restricted" / "salaries.csv",
        ["employee_id", "name", "department", "salary_gbp", "bonus_pct", "band"],
        [[r["employee_id"], r["name"], r["department"], r["salary_gbp"], r["bonus_pct"], r["band"]]
         for r in rows],
    )


# ---------------------------------------------------------------------------
# data/finance/q3_2026_quarterly_report.pdf
# ---------------------------------------------------------------------------
def make_quarterly_report_pdf(path: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    ss = getSampleStyleSheet()
    body = ParagraphStyle("Body", parent=ss["BodyText"], fontName="Helvetica", fontSize=10, leading=14,
                          spaceAfter=6)
    h1 = ParagraphStyle("H1", parent=ss["Heading1"], fontName="Helvetica-Bold", fontSize=15, spaceBefore=10,
                        spaceAfter=6, textColor=colors.HexColor("#1F3A5F"))
    h2 = ParagraphStyle("H2", parent=ss["Heading2"], fontName="Helvetica-Bold", fontSize=12, spaceBefore=8,
                        spaceAfter=4, textColor=colors.HexColor("#1F3A5F"))
    title = ParagraphStyle("T", parent=ss["Title"], fontName="Helvetica-Bold", fontSize=20, leading=24,
                           textColor=colors.HexColor("#1F3A5F"))
    caption = ParagraphStyle("Cap", parent=body, fontName="Helvetica-Oblique", fontSize=8.5, leading=11,
                             spaceBefore=3, spaceAfter=10)
    cell = ParagraphStyle("Cell", parent=body, fontSize=9, leading=11, spaceAfter=0)
    bullet = ParagraphStyle("Bullet", parent=body, leftIndent=14, bulletIndent=4, spaceAfter=3,
                            bulletFontName="Helvetica")

    head_l = ParagraphStyle("HeadL", parent=cell, fontName="Helvetica-Bold", textColor=colors.white)
    head_r = ParagraphStyle("HeadR", parent=head_l, alignment=TA_RIGHT)

    def table(data, col_widths, total_row=True):
        # header cells as Paragraphs so that long column titles wrap instead of overflowing
        header = [Paragraph(h, head_l if i == 0 else head_r) for i, h in enumerate(data[0])]
        t = Table([header, *data[1:]], colWidths=col_widths, repeatRows=1)
        style = [
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
            ("FONT", (0, 1), (-1, -1), "Helvetica", 9),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1F3A5F")),
            ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
            ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
            ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#9AA8B8")),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F1F4F8")]),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]
        if total_row:
            style += [("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 9),
                      ("LINEABOVE", (0, -1), (-1, -1), 1, colors.HexColor("#1F3A5F"))]
        t.setStyle(TableStyle(style))
        return t

    # ---- derived figures ----
    rev26 = sum(REV_Q3_2026.values())
    rev25 = sum(REV_Q3_2025.values())
    opex26 = sum(OPEX_Q3_2026.values())
    opex25 = sum(OPEX_Q3_2025.values())
    op26, op25 = rev26 - opex26, rev25 - opex25
    b_rev, b_opex, b_profit = budget_quarter_totals()
    b_rev_q3, b_opex_q3, b_profit_q3 = b_rev[2], b_opex[2], b_profit[2]
    ytd_rev = REV_ACTUAL_Q1_2026 + REV_ACTUAL_Q2_2026 + rev26
    ytd_opex = OPEX_ACTUAL_Q1_2026 + OPEX_ACTUAL_Q2_2026 + opex26
    ytd_rev_budget = sum(b_rev[:3])
    ytd_opex_budget = sum(b_opex[:3])
    hc26 = sum(HEADCOUNT_SEP_2026.values())
    c, p, t = (REV_Q3_2026[s] for s in SEGMENTS)
    c0, p0, t0 = (REV_Q3_2025[s] for s in SEGMENTS)

    story = []
    story.append(Paragraph("Helios Analytics Ltd.", title))
    story.append(Paragraph("Quarterly Report - Q3 2026 (1 July to 30 September 2026)", h2))
    story.append(Paragraph(
        "Published 28 October 2026 by the Finance team (CFO: Priya Raman). All amounts are in pounds sterling "
        "(GBP); tables are in GBP thousands (GBP k) unless stated otherwise. Figures are unaudited management "
        "accounts. Helios Analytics' financial year is the calendar year.", body))
    story.append(Spacer(1, 4))

    story.append(Paragraph("1. Highlights", h1))
    highlights = [
        f"Revenue of {gbp_m(rev26)}, up {pct_abs(rev26, rev25)} on Q3 2025 ({gbp_m(rev25)}) and "
        f"{pct_abs(rev26, b_rev_q3)} above the Q3 budget of {gbp_m(b_rev_q3)}.",
        f"Platform revenue grew {pct_abs(p, p0)} to {gbp_m(p)}; Platform annual recurring revenue (ARR) reached "
        f"£{PLATFORM_ARR_M}m with {PLATFORM_CUSTOMERS[0]} subscription customers (30 September 2025: "
        f"{PLATFORM_CUSTOMERS[1]}).",
        f"Operating profit of {gbp_m(op26)} (operating margin {pct_of(op26, rev26)}), compared with "
        f"{gbp_m(op25)} ({pct_of(op25, rev25)}) in Q3 2025.",
        f"Cash of £{CASH_SEP_2026_M}m at 30 September 2026 and no borrowings.",
        f"Headcount of {hc26} at 30 September 2026 (30 September 2025: {HEADCOUNT_SEP_2025_TOTAL}).",
    ]
    for h in highlights:
        story.append(Paragraph(h, bullet, bulletText="\u2013"))

    story.append(Paragraph("2. Statement from the Chief Executive", h1))
    story.append(Paragraph(
        "\"The third quarter was our strongest quarter to date. Clients are moving from one-off analytics "
        "projects to long-term platform subscriptions, and our Platform segment, built around the Helios Lens "
        "product, now contributes more than a third of our revenue. Our consultants delivered major data "
        "modernisation programmes for a regional water utility in the north of England and for two German "
        "automotive suppliers, and the new data engineering capacity in Berlin and Toronto allowed us to take "
        "on this work without delaying other projects. I want to thank every one of our colleagues for "
        "their work this quarter.\" - Margaret Okafor, Chief Executive Officer", body))

    story.append(Paragraph("3. Revenue by segment", h1))
    story.append(Paragraph(
        f"Total revenue for the quarter was {gbp_m(rev26)} ({thousands(rev26)} GBP k), an increase of "
        f"{thousands(rev26 - rev25)} GBP k or {pct_abs(rev26, rev25)} compared with Q3 2025. Table 1 shows revenue "
        "for each of our three reporting segments.", body))
    rows = [["Segment", "Q3 2026 (GBP k)", "Q3 2025 (GBP k)", "Change (GBP k)", "Change (%)"]]
    for s in SEGMENTS:
        rows.append([s, thousands(REV_Q3_2026[s]), thousands(REV_Q3_2025[s]),
                     signed(REV_Q3_2026[s] - REV_Q3_2025[s]), pct(REV_Q3_2026[s], REV_Q3_2025[s])])
    rows.append(["Total revenue", thousands(rev26), thousands(rev25), signed(rev26 - rev25), pct(rev26, rev25)])
    story.append(KeepTogether([
        table(rows, [4.6 * cm, 3.1 * cm, 3.1 * cm, 3.1 * cm, 2.6 * cm]),
        Paragraph("Table 1: Revenue by segment, Q3 2026 compared with Q3 2025 (GBP thousands).", caption),
    ]))

    story.append(Paragraph("Consulting", h2))
    story.append(Paragraph(
        f"Consulting revenue was {gbp_m(c)} in Q3 2026, up {pct_abs(c, c0)} from {gbp_m(c0)} in Q3 2025, and "
        f"remains our largest segment at {pct_of(c, rev26)} of total revenue. Billable utilisation of "
        f"consultants rose to {UTILISATION[0]}% (Q3 2025: {UTILISATION[1]}%). Average day rates increased by "
        "4% following the annual rate review in July. Growth came mainly from data platform modernisation "
        "work in the UK and Germany; Toronto consulting revenue was flat.", body))
    story.append(Paragraph("Platform", h2))
    story.append(Paragraph(
        f"Platform revenue, from Helios Lens subscriptions and related support, grew {pct_abs(p, p0)} to "
        f"{gbp_m(p)} (Q3 2025: {gbp_m(p0)}). We added 11 net new subscription customers in the quarter, "
        f"bringing the total to {PLATFORM_CUSTOMERS[0]}, and net revenue retention was 118%. Platform "
        f"now represents {pct_of(p, rev26)} of total revenue.", body))
    story.append(Paragraph("Training", h2))
    story.append(Paragraph(
        f"Training revenue, from the Helios Academy courses, fell {pct_abs(t, t0)} to {gbp_m(t)} "
        f"(Q3 2025: {gbp_m(t0)}). We trained {LEARNERS[0]:,} learners (Q3 2025: {LEARNERS[1]:,}). The "
        "decline reflects our decision to retire classroom courses in Toronto and move them to live online "
        "delivery from September 2026; the summer quarter is also seasonally the weakest for training.", body))

    story.append(Paragraph("4. Operating expenses by department", h1))
    story.append(Paragraph(
        f"Operating expenses for the quarter were {gbp_m(opex26)} ({thousands(opex26)} GBP k), up "
        f"{pct_abs(opex26, opex25)} from {gbp_m(opex25)} in Q3 2025. Operating expenses include all staff "
        "costs, including the delivery costs of consultants and trainers, together with premises, software, "
        "travel and other overheads. Table 2 shows operating expenses by department and the headcount of "
        "each department at the end of the quarter.", body))
    rows = [["Department", "Q3 2026 (GBP k)", "Q3 2025 (GBP k)", "Change (%)", "Headcount 30 Sep 2026"]]
    for d in DEPARTMENTS:
        rows.append([d, thousands(OPEX_Q3_2026[d]), thousands(OPEX_Q3_2025[d]),
                     pct(OPEX_Q3_2026[d], OPEX_Q3_2025[d]), str(HEADCOUNT_SEP_2026[d])])
    rows.append(["Total operating expenses", thousands(opex26), thousands(opex25), pct(opex26, opex25), str(hc26)])
    story.append(KeepTogether([
        table(rows, [4.6 * cm, 3.1 * cm, 3.1 * cm, 2.6 * cm, 3.2 * cm]),
        Paragraph("Table 2: Operating expenses by department, Q3 2026 compared with Q3 2025 "
                  "(GBP thousands), and headcount at 30 September 2026.", caption),
    ]))
    e, e0 = OPEX_Q3_2026["Engineering"], OPEX_Q3_2025["Engineering"]
    story.append(Paragraph(
        f"The largest increase was in Engineering ({pct(e, e0)}), reflecting the expansion of the data "
        "engineering teams in Berlin and Toronto and continued investment in Helios Lens. Consulting costs "
        f"rose {pct_abs(OPEX_Q3_2026['Consulting'], OPEX_Q3_2025['Consulting'])}, in line with the larger "
        "consulting team and the July pay review. Central functions (IT, Finance, HR, Legal and the Executive "
        f"Office) together cost {thousands(sum(OPEX_Q3_2026[d] for d in DEPARTMENTS[3:]))} GBP k, "
        f"{pct_of(sum(OPEX_Q3_2026[d] for d in DEPARTMENTS[3:]), rev26)} of revenue.", body))
    offices = ", ".join(f"{o} {n}" for o, n in HEADCOUNT_BY_OFFICE_SEP_2026.items())
    story.append(Paragraph(
        f"At 30 September 2026 Helios employed {hc26} people ({offices}), an increase of "
        f"{hc26 - HEADCOUNT_SEP_2025_TOTAL} over the year.", body))

    story.append(Paragraph("5. Operating profit and comparison with budget", h1))
    story.append(Paragraph(
        f"Operating profit was {gbp_m(op26)}, up {pct_abs(op26, op25)} on Q3 2025, and the operating margin "
        f"improved from {pct_of(op25, rev25)} to {pct_of(op26, rev26)}. Table 3 compares the quarter with the "
        "2026 budget approved by the Board in December 2025.", body))
    rows = [["Line item", "Q3 2026 actual (GBP k)", "Q3 2026 budget (GBP k)", "Variance (GBP k)"]]
    for s in SEGMENTS:
        rows.append([f"Revenue - {s}", thousands(REV_Q3_2026[s]), thousands(BUDGET_REV[s][2]),
                     signed(REV_Q3_2026[s] - BUDGET_REV[s][2])])
    rows.append(["Total revenue", thousands(rev26), thousands(b_rev_q3), signed(rev26 - b_rev_q3)])
    rows.append(["Total operating expenses", thousands(opex26), thousands(b_opex_q3), signed(opex26 - b_opex_q3)])
    rows.append(["Operating profit", thousands(op26), thousands(b_profit_q3), signed(op26 - b_profit_q3)])
    story.append(KeepTogether([
        table(rows, [4.9 * cm, 4.1 * cm, 4.1 * cm, 3.6 * cm]),
        Paragraph("Table 3: Q3 2026 actual results compared with budget (GBP thousands). For "
                  "operating expenses a negative variance means spending below budget.", caption),
    ]))
    story.append(Paragraph(
        f"Year to date (January to September 2026), revenue was {gbp_m(ytd_rev)} against a budget of "
        f"{gbp_m(ytd_rev_budget)}, operating expenses were {gbp_m(ytd_opex)} against a budget of "
        f"{gbp_m(ytd_opex_budget)}, and operating profit was {gbp_m(ytd_rev - ytd_opex)}.", body))

    story.append(Paragraph("6. Outlook", h1))
    story.append(Paragraph(
        f"We are raising our full-year 2026 revenue guidance to {gbp_m(FY_GUIDANCE_REVENUE, 1)}, above the "
        f"budget of {gbp_m(sum(b_rev), 1)}, which implies fourth-quarter revenue of about "
        f"{gbp_m(FY_GUIDANCE_REVENUE - ytd_rev)}. We expect Platform growth to continue and Training revenue "
        "to recover as the online course catalogue grows. We plan to reach a headcount of "
        f"{BUDGET_HEADCOUNT[-1]} by the end of 2026, in line with budget. The Q4 2026 report will be published "
        "in late January 2027.", body))
    story.append(Paragraph(
        "Questions about this report should be sent to Priya Raman, Chief Financial Officer, or to Oliver "
        f"Grant, Financial Controller (finance@{DOMAIN}).", body))

    class ReportTemplate(SimpleDocTemplate):
        """Draws the footer when a page is finished, so that text extraction
        yields the page body first and the footer last."""

        def afterPage(self):
            canv = self.canv
            canv.setDateFormatter(lambda *a: "D:20261028090000+00'00'")  # fixed PDF dates
            canv.saveState()
            canv.setFont("Helvetica", 8)
            canv.setFillColor(colors.HexColor("#555555"))
            canv.drawString(2 * cm, 1.2 * cm, "Helios Analytics Ltd. - Q3 2026 Quarterly Report - Internal")
            canv.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"Page {self.page}")
            canv.restoreState()

    doc = ReportTemplate(
        str(path), pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, topMargin=2 * cm, bottomMargin=2 * cm,
        title="Helios Analytics Ltd. - Quarterly Report Q3 2026", author="Priya Raman",
        subject="Q3 2026 quarterly results", creator="Helios Analytics Finance",
        keywords=["quarterly report", "Q3 2026", "revenue", "operating expenses"],
        invariant=1,
    )
    doc.build(story)


# ---------------------------------------------------------------------------
# data/finance/budget_2026.xlsx
# ---------------------------------------------------------------------------
def allocate(total: int, weights: dict, step: int = 10) -> dict:
    """Split total by weights, rounded to `step`, remainder to the largest weight."""
    wsum = sum(weights.values())
    out = {k: int(Decimal(total * w / wsum / step).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * step
           for k, w in weights.items()}
    biggest = max(weights, key=lambda k: (weights[k], k))
    out[biggest] += total - sum(out.values())
    return out


def make_budget_xlsx(path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = Workbook()
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor="1F3A5F")
    bold = Font(bold=True)

    def style_header(ws, ncols):
        for c in range(1, ncols + 1):
            cell = ws.cell(row=1, column=c)
            cell.font = header_font
            cell.fill = header_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.freeze_panes = "A2"

    # ---- Summary ----
    ws = wb.active
    ws.title = "Summary"
    ws.append(["Line item (GBP thousands unless stated)", *QUARTERS, "FY 2026"])
    rev, opex, profit = budget_quarter_totals()
    summary_rows = []
    for s in SEGMENTS:
        summary_rows.append((f"Revenue - {s}", BUDGET_REV[s], False))
    summary_rows.append(("Total revenue", rev, True))
    summary_rows.append(("Operating expenses - Staff costs", BUDGET_STAFF, False))
    summary_rows.append(("Operating expenses - Non-staff costs", BUDGET_NONSTAFF, False))
    summary_rows.append(("Total operating expenses", opex, True))
    summary_rows.append(("Operating profit", profit, True))
    for label, vals, is_bold in summary_rows:
        ws.append([label, *vals, sum(vals)])
        if is_bold:
            for cell in ws[ws.max_row]:
                cell.font = bold
    margins = [float((Decimal(profit[q]) / Decimal(rev[q])).quantize(Decimal("0.0001"))) for q in range(4)]
    fy_margin = float((Decimal(sum(profit)) / Decimal(sum(rev))).quantize(Decimal("0.0001")))
    ws.append(["Operating margin (%)", *margins, fy_margin])
    for cell in ws[ws.max_row][1:]:
        cell.number_format = "0.0%"
    ws.append(["Capital expenditure", *BUDGET_CAPEX, sum(BUDGET_CAPEX)])
    ws.append(["Headcount (end of period, FTE)", *BUDGET_HEADCOUNT, BUDGET_HEADCOUNT[-1]])
    for row in ws.iter_rows(min_row=2, min_col=2):
        for cell in row:
            if cell.number_format == "General":
                cell.number_format = "#,##0"
    ws.column_dimensions["A"].width = 42
    for col in "BCDEF":
        ws.column_dimensions[col].width = 12
    style_header(ws, 6)

    # ---- By Department ----
    ws2 = wb.create_sheet("By Department")
    ws2.append(["Department", "Office", "Budget owner", "Headcount (Dec 2026)",
                "Staff costs (GBP k)", "Non-staff costs (GBP k)", "Total opex (GBP k)"])
    tot = [0, 0, 0]
    for dept, owner, hc, staff, nonstaff in BUDGET_DEPT:
        staff_split = allocate(staff, hc)
        non_split = allocate(nonstaff, hc)
        for office in ("Leeds", "Berlin", "Toronto"):
            if office not in hc:
                continue
            s, n = staff_split[office], non_split[office]
            ws2.append([dept, office, owner, hc[office], s, n, s + n])
            tot[0] += hc[office]
            tot[1] += s
            tot[2] += n
    ws2.append(["Total", "All offices", "Priya Raman", tot[0], tot[1], tot[2], tot[1] + tot[2]])
    for cell in ws2[ws2.max_row]:
        cell.font = bold
    assert tot[0] == BUDGET_HEADCOUNT[-1] and tot[1] + tot[2] == sum(opex), tot
    for row in ws2.iter_rows(min_row=2, min_col=4):
        for cell in row:
            cell.number_format = "#,##0"
    for col, width in zip("ABCDEFG", (18, 12, 20, 14, 14, 16, 14), strict=False):
        ws2.column_dimensions[col].width = width
    style_header(ws2, 7)

    # ---- Assumptions ----
    ws3 = wb.create_sheet("Assumptions")
    ws3.append(["Assumption", "Value", "Unit", "Notes"])
    assumptions = [
        ("Exchange rate GBP/EUR", 1.17, "EUR per GBP", "Used to convert Berlin costs"),
        ("Exchange rate GBP/CAD", 1.86, "CAD per GBP", "Used to convert Toronto costs"),
        ("Annual pay review", 0.035, "% of salary", "Effective 1 July 2026"),
        ("Employer social costs - Leeds", 0.15, "% of salary", "National Insurance and pension"),
        ("Employer social costs - Berlin", 0.21, "% of salary", "Social insurance contributions"),
        ("Employer social costs - Toronto", 0.11, "% of salary", "CPP, EI and benefits"),
        ("Consulting utilisation target", 0.76, "% of available days", "Billable days / available days"),
        ("Average consulting day rate", 1150, "GBP per day", "Before the July 2026 rate review"),
        ("Platform net revenue retention", 1.15, "ratio", "Budget assumption for Helios Lens"),
        ("New Platform customers", 40, "customers per year", "Net additions in 2026"),
        ("Subcontractor costs (in Consulting staff costs)", 2900, "GBP thousands",
         "Freelance consultants on client projects"),
        ("Board approval date", datetime(2025, 12, 9), "date", "Budget approved by the Board"),
    ]
    for a in assumptions:
        ws3.append(list(a))
    for value_cell, unit_cell in ws3.iter_rows(min_row=2, min_col=2, max_col=3):
        if unit_cell.value.startswith("%"):
            value_cell.number_format = "0.0%"
        elif isinstance(value_cell.value, datetime):
            value_cell.number_format = "d mmmm yyyy"
        elif isinstance(value_cell.value, int):
            value_cell.number_format = "#,##0"
    for col, width in zip("ABCD", (44, 16, 20, 40), strict=False):
        ws3.column_dimensions[col].width = width
    style_header(ws3, 4)

    props = wb.properties
    props.creator = "Priya Raman"
    props.lastModifiedBy = "Oliver Grant"
    props.title = "Helios Analytics budget 2026"
    props.subject = "FY2026 budget"
    props.keywords = "budget; 2026; finance"
    props.created = datetime(2025, 11, 24, 9, 0, 0)
    props.modified = datetime(2025, 12, 9, 17, 0, 0)
    wb.save(path)
    normalize_zip(path, "2025-12-09T17:00:00Z")


# ---------------------------------------------------------------------------
# data/it/it_handbook.html
# ---------------------------------------------------------------------------
IT_HANDBOOK_HTML = f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="author" content="Daniel Ferreira">
<meta name="description" content="Helios Analytics IT Handbook: VPN, passwords, laptops, security incidents and Service Desk contacts.">
<meta name="dcterms.modified" content="2026-03-03">
<title>IT Handbook - Helios Analytics</title>
</head>
<body>
<header>
<h1>Helios Analytics IT Handbook</h1>
<p>Owner: Daniel Ferreira, Head of IT. Version 4.1, last updated 3 March 2026. This handbook applies to
everyone who uses Helios Analytics devices, accounts or systems in Leeds, Berlin and Toronto.</p>
</header>

<main>
<section id="vpn">
<h2>1. VPN access</h2>
<p>You must connect through the Helios Connect VPN whenever you work outside a Helios office and need to
reach internal systems such as the file shares, the Helios Lens staging environments or the finance
systems. Helios Connect is pre-installed on every company laptop. Sign-in uses your normal Helios username
(firstname.lastname), your password and a six-digit code from the SafeKey app on your company-registered
phone.</p>

<h3>1.1 Setting up the VPN for the first time</h3>
<ol>
<li>Install SafeKey from the Apple App Store or Google Play on the phone you registered with IT.</li>
<li>Go to <a href="https://id.{DOMAIN}/mfa">https://id.{DOMAIN}/mfa</a> from the office network, sign in and
choose <strong>Enrol new token</strong>. Scan the QR code with SafeKey.</li>
<li>Open Helios Connect on your laptop (Windows: Start menu; macOS: Applications) and enter your username
and password, followed by the six-digit SafeKey code when prompted.</li>
<li>Leave the gateway on <strong>Automatic</strong>. The client chooses the nearest gateway: vpn-lds (Leeds),
vpn-ber (Berlin) or vpn-tor (Toronto).</li>
</ol>
<p>The VPN disconnects after 12 hours or after 30 minutes without network activity. Split tunnelling is
disabled, so all traffic goes through Helios while you are connected.</p>

<h3>1.2 Resetting your VPN token</h3>
<p>You need a token reset if you have a new phone, if you lost your phone, or if SafeKey codes are
repeatedly rejected.</p>
<ul>
<li><strong>New phone, old phone still working:</strong> go to <a href="https://id.{DOMAIN}/mfa">https://id.{DOMAIN}/mfa</a>,
sign in with your current code and choose <strong>Move token to new device</strong>. Scan the new QR code
with SafeKey on the new phone. The old token stops working immediately.</li>
<li><strong>Phone lost, stolen or reset:</strong> call the Service Desk on {SERVICE_DESK_UK} (internal extension
4357). The analyst verifies your identity with your employee ID and a short video call, then issues a
temporary eight-digit bypass code that is valid for 24 hours. Use the bypass code to sign in to
https://id.{DOMAIN}/mfa and enrol a new token. A lost phone that holds company data must also be reported
as a security incident (section 5).</li>
<li><strong>Codes rejected:</strong> check that the date and time on your phone are set automatically;
SafeKey codes fail if the phone clock is more than 30 seconds out. If codes still fail, call the
Service Desk.</li>
</ul>
<p>For security reasons, token resets are never carried out by e-mail or chat. Accounts with more than
three token resets in 12 months are reviewed by IT Security.</p>
</section>

<section id="passwords">
<h2>2. Password policy</h2>
<ul>
<li>Passwords must be at least 14 characters long. We recommend a passphrase of three or four random
words.</li>
<li>Passwords are checked against a list of known breached passwords and cannot contain your name or
the word "Helios".</li>
<li>Passwords do not expire on a schedule. You must change your password immediately if you suspect it
has been exposed, and IT will force a change if it appears in a breach.</li>
<li>You cannot reuse any of your last 10 passwords.</li>
<li>After 10 failed sign-in attempts your account is locked for 15 minutes.</li>
<li>Multi-factor authentication (SafeKey) is mandatory for e-mail, VPN and all cloud applications.</li>
<li>Store all work passwords in HeliosVault, the company password manager. Never write passwords down or
share them, including with IT staff.</li>
<li>Administrator and service accounts require passwords of at least 24 characters and a hardware
security key.</li>
</ul>
<p>To change your password, press Ctrl+Alt+Delete on Windows and choose <em>Change a password</em>, or use
<a href="https://id.{DOMAIN}/password">https://id.{DOMAIN}/password</a>. If you have forgotten your password,
use the <em>Forgot password</em> link on the same page; you will need your SafeKey code.</p>
</section>

<section id="laptops">
<h2>3. Laptops and equipment</h2>
<p>Every employee receives a company laptop based on their role. Personal computers must not be used for
Helios work. The standard models are:</p>
<table>
<caption>Supported laptop models (2026)</caption>
<thead>
<tr><th>Profile</th><th>Model</th><th>Specification</th><th>Issued to</th><th>Replacement cycle</th></tr>
</thead>
<tbody>
<tr><td>Standard</td><td>Lenovo ThinkPad T14 Gen 5</td><td>16 GB RAM, 512 GB SSD</td><td>HR, Finance, Legal, Sales</td><td>4 years</td></tr>
<tr><td>Consultant</td><td>Dell Latitude 7450</td><td>32 GB RAM, 512 GB SSD</td><td>Consulting</td><td>4 years</td></tr>
<tr><td>Developer</td><td>Apple MacBook Pro 14-inch (M3 Pro)</td><td>36 GB RAM, 1 TB SSD</td><td>Engineering, IT</td><td>3 years</td></tr>
<tr><td>Data workstation</td><td>Lenovo ThinkPad P16 Gen 2</td><td>64 GB RAM, 2 TB SSD, NVIDIA RTX 2000 Ada</td><td>On approval by the VP Engineering</td><td>3 years</td></tr>
</tbody>
</table>
<h3>3.1 Requesting a laptop or accessory</h3>
<ol>
<li>Open the Service Portal at <a href="https://help.{DOMAIN}">https://help.{DOMAIN}</a> and choose
<strong>Request hardware</strong>.</li>
<li>Select the item and explain the business need. Your line manager approves the request
automatically by e-mail.</li>
<li>Requests costing more than GBP 2,500 also need approval from the Head of IT, Daniel Ferreira.</li>
<li>Approved laptops are delivered within 5 working days in Leeds and within 10 working days in Berlin
and Toronto.</li>
</ol>
<p>Laptops for new starters are ordered by HR when the contract is signed and are ready on the first
day. When your laptop reaches the end of its replacement cycle, IT contacts you to arrange a swap.
Docking stations, monitors, keyboards and headsets can be requested in the same way. When you leave Helios,
return all equipment to IT on your last working day.</p>
</section>

<section id="acceptable-use">
<h2>4. Acceptable use</h2>
<p>Company devices and accounts are provided for work. Limited personal use is allowed if it does not
interfere with your work or break the law. Only software from Software Centre (Windows) or Self Service
(macOS) may be installed; anything else must be requested through the Service Portal so that IT Security can
review it.</p>
</section>

<section id="security-incidents">
<h2>5. Reporting a security incident</h2>
<p>A security incident is anything that could put Helios or client data at risk, for example a lost or
stolen device, a suspicious e-mail that you clicked on, malware warnings, data sent to the wrong person,
or someone asking for your password.</p>
<ol>
<li>Report it <strong>immediately, and in any case within 1 hour</strong> of noticing it.</li>
<li>Call the 24/7 security hotline on {SECURITY_HOTLINE} or e-mail
<a href="mailto:security@{DOMAIN}">security@{DOMAIN}</a>. For suspicious e-mails that you have not clicked,
use the <strong>Report Phish</strong> button in Outlook instead; do not forward them.</li>
<li>Do not switch off an affected laptop and do not try to investigate yourself. Disconnect it from the
network (turn off Wi-Fi) and wait for instructions.</li>
<li>If personal data may be involved, IT Security informs the Data Protection Officer, Grace Adeyemi,
who decides within 72 hours whether the regulator and the people affected must be notified.</li>
</ol>
<p>Incidents are handled by the IT Security Lead, Kwame Mensah. Nobody is disciplined for reporting a
genuine mistake quickly; delaying a report is a far bigger problem than the mistake itself.</p>
</section>

<section id="helpdesk">
<h2>6. Service Desk contacts and support hours</h2>
<p>The Service Desk is the single point of contact for all IT requests and problems. Log requests in the
Service Portal at <a href="https://help.{DOMAIN}">https://help.{DOMAIN}</a>, e-mail
<a href="mailto:servicedesk@{DOMAIN}">servicedesk@{DOMAIN}</a>, or call internal extension 4357 (HELP).</p>
<table>
<caption>Service Desk support hours</caption>
<thead>
<tr><th>Location</th><th>Hours (local time)</th><th>Phone</th></tr>
</thead>
<tbody>
<tr><td>Leeds</td><td>Monday to Friday, 08:00-18:00</td><td>{SERVICE_DESK_UK}</td></tr>
<tr><td>Berlin</td><td>Monday to Friday, 08:00-17:00</td><td>Extension 4357 or {SERVICE_DESK_UK}</td></tr>
<tr><td>Toronto</td><td>Monday to Friday, 08:00-18:00</td><td>{SERVICE_DESK_TORONTO}</td></tr>
<tr><td>Out of hours</td><td>Priority 1 incidents only, 24/7</td><td>{SECURITY_HOTLINE}</td></tr>
</tbody>
</table>
<p>Target response times depend on priority:</p>
<ul>
<li><strong>P1</strong> (service down for many users, or a security incident): response within 30 minutes, 24/7.</li>
<li><strong>P2</strong> (one user cannot work): response within 2 business hours.</li>
<li><strong>P3</strong> (problem with a workaround): response within 1 working day.</li>
<li><strong>P4</strong> (requests and questions): response within 3 working days.</li>
</ul>
<p>For escalations, contact the Head of IT, Daniel Ferreira (daniel.ferreira@{DOMAIN}).</p>
</section>
</main>

<footer>
<p>Helios Analytics Ltd. - internal document. See also the Security FAQ for everyday security questions.</p>
</footer>
</body>
</html>
"""


# ---------------------------------------------------------------------------
# data/it/security_faq.txt
# ---------------------------------------------------------------------------
SECURITY_FAQ_TXT = f"""
HELIOS ANALYTICS - SECURITY FAQ
Owner: Kwame Mensah, IT Security Lead. Last updated: 14 April 2026.
Answers to the questions IT Security is asked most often. For VPN, passwords, laptops
and how to report an incident, see the IT Handbook.

Q: Do I have to complete security training?
A: Yes. Every employee completes the 45-minute Security Essentials course each year by
31 March. New starters must complete it within their first 2 weeks. Access to client
systems is suspended if the course is more than 30 days overdue.

Q: What are the monthly phishing tests?
A: IT Security sends simulated phishing e-mails to everyone once a month. If you click,
you will be shown a short 5-minute lesson; nothing is reported to your manager unless
you fail three tests in a row. Reporting the test with the Report Phish button counts
as a pass.

Q: Can I use a USB memory stick?
A: No. USB storage devices are blocked on all company laptops. To move files, use
Helios Share or the team folders. USB keyboards, mice, headsets and security keys
still work.

Q: How do I share files with a client?
A: Use Helios Share only. Links expire automatically after 30 days and must be
protected with a password that you send to the client by a different channel (for
example by phone). Never use personal cloud storage or personal e-mail for client data.

Q: Can I use public AI chatbots at work?
A: You may use public AI tools for general questions that contain no confidential
information. Client data, personal data, source code and financial results must only
be used with Helios Copilot, our approved internal assistant, which keeps data inside
Helios systems.

Q: Can I read work e-mail on my own phone?
A: Yes, but only through the Outlook app after enrolling the phone in Intune via the
Company Portal app. This lets IT wipe company data (not your personal data) if the phone
is lost. Other mail apps are blocked.

Q: Is my laptop encrypted?
A: Yes. All laptops use full-disk encryption (BitLocker on Windows, FileVault on macOS),
which IT enforces automatically. Your screen locks after 5 minutes of inactivity; lock it
yourself (Windows key + L, or Control + Command + Q on a Mac) whenever you step away.

Q: Can I work on public Wi-Fi?
A: Yes, but always connect to the VPN first and avoid networks that ask you to install
software. A mobile hotspot from your company phone is preferred on trains and in
airports.

Q: I am travelling abroad for work. Anything special?
A: For travel to countries on the IT Security travel restriction list, tell IT
Security at least 10 working days before you leave. You will be given a clean loan
laptop and must not take your normal laptop. The list is published on the intranet.

Q: What is the clean desk rule?
A: At the end of each day, lock away printed documents containing client or personal
data and clear whiteboards. Confidential paper goes in the locked blue bins, never in
ordinary recycling.

Q: Who is the Data Protection Officer?
A: Grace Adeyemi in the Legal team (grace.adeyemi@{DOMAIN}). Contact her with questions
about personal data, data subject requests or retention periods.

Q: I think I clicked a bad link. What now?
A: Do not wait and do not feel embarrassed. Follow the incident reporting steps in the
IT Handbook straight away.
"""


# ---------------------------------------------------------------------------
# docs/sample_data.md (kept out of data/ so it is not ingested as a company document)
# ---------------------------------------------------------------------------
README_MD = """
# Sample corpus: Helios Analytics Ltd.

The `data/` folder holds a small, entirely **fictional** corpus written for this project (not taken from any
dataset) so that the demo chatbot has realistic documents to answer from. Helios Analytics Ltd. is an
invented 180-person data-analytics company with headquarters in Leeds and offices in Berlin and Toronto; all
people, numbers, addresses, phone numbers (drama/555 ranges) and e-mail addresses (`.example` domain) are
made up. The files are generated deterministically by `scripts/make_sample_data.py`; edit that script
rather than the files.

| File | Format | Contents |
|---|---|---|
| `hr/parental_leave_policy.md` | Markdown | Parental leave policy: maternity, partner, adoption leave, pay, part-time rules, how to apply, contacts |
| `hr/employee_handbook.docx` | Word (DOCX) | Employee handbook: working hours, sickness, hybrid work, holidays (entitlement table), expenses, code of conduct |
| `hr/employees.csv` | CSV | Staff directory extract (47 of the 180 employees): id, name, department, job title, office, manager, start date, e-mail |
| `hr_restricted/salaries.csv` | CSV | Restricted: salary (GBP), bonus % and band for the same 47 employees |
| `finance/q3_2026_quarterly_report.pdf` | PDF | Q3 2026 quarterly report: revenue by segment, operating expenses by department, budget comparison, outlook |
| `finance/budget_2026.xlsx` | Excel (XLSX) | FY2026 budget: sheets "Summary" (by quarter), "By Department" (by department and office), "Assumptions" |
| `it/it_handbook.html` | HTML | IT handbook: VPN setup and token reset, password policy, laptops, incident reporting, Service Desk hours |
| `it/security_faq.txt` | Plain text | Security FAQ: training, phishing tests, USB, file sharing, AI tools, mobile, travel |

**`_meta.json` convention.** Each department folder contains a `_meta.json` file with `department`, `owner`
and `groups`. At ingest these values are applied to every document in that folder: `groups` lists the user
groups allowed to see the documents (`"all"` = every employee, `"hr"` = HR staff only, which is why the salary
table lives in the separate `hr_restricted/` folder).
"""


META = {
    "hr": {"department": "HR", "owner": "Tomasz Kowalczyk", "groups": ["all"]},
    "hr_restricted": {"department": "HR", "owner": "Tomasz Kowalczyk", "groups": ["hr"]},
    "finance": {"department": "Finance", "owner": "Priya Raman", "groups": ["all"]},
    "it": {"department": "IT", "owner": "Daniel Ferreira", "groups": ["all"]},
}


def generate() -> None:
    check_finance_consistency()
    for folder, meta in META.items():
        (DATA / folder).mkdir(parents=True, exist_ok=True)
        write_json(DATA / folder / "_meta.json", meta)
    # salaries.csv lives only in hr_restricted/ (remove a stale copy if present)
    stale = DATA / "hr" / "salaries.csv"
    if stale.exists():
        stale.unlink()

    (ROOT / "docs").mkdir(exist_ok=True)
    write_text(ROOT / "docs" / "sample_data.md", README_MD)
    write_text(DATA / "hr" / "parental_leave_policy.md", PARENTAL_LEAVE_MD)
    make_handbook_docx(DATA / "hr" / "employee_handbook.docx")
    make_people_csvs()
    make_quarterly_report_pdf(DATA / "finance" / "q3_2026_quarterly_report.pdf")
    make_budget_xlsx(DATA / "finance" / "budget_2026.xlsx")
    write_text(DATA / "it" / "it_handbook.html", IT_HANDBOOK_HTML)
    write_text(DATA / "it" / "security_faq.txt", SECURITY_FAQ_TXT)


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------
def words(text: str) -> int:
    return len(re.findall(r"\w+(?:[-'.]\w+)*", text))


def check() -> bool:
    import pandas as pd
    from docx import Document
    from openpyxl import load_workbook
    from pypdf import PdfReader

    ok = True

    def report(cond, msg):
        nonlocal ok
        print(("  ok   " if cond else "  FAIL ") + msg)
        ok &= bool(cond)

    print("Verifying generated corpus:")
    # PDF
    pdf = DATA / "finance" / "q3_2026_quarterly_report.pdf"
    reader = PdfReader(pdf)
    texts = [pg.extract_text() or "" for pg in reader.pages]
    report(3 <= len(reader.pages) <= 5, f"PDF has {len(reader.pages)} pages (3-5)")
    report(all(len(t.strip()) > 200 for t in texts), "pypdf extracts text from every PDF page: "
           + ", ".join(str(len(t)) for t in texts) + " chars")
    full = "\n".join(texts)
    report("6,420" in full and "11,560" in full and "8,370" in full, "PDF contains table figures")
    report(pdf.stat().st_size < 200_000, f"PDF size {pdf.stat().st_size} bytes < 200 KB")
    # DOCX
    d = Document(DATA / "hr" / "employee_handbook.docx")
    heads = [(p.style.name, p.text) for p in d.paragraphs if p.style.name.startswith("Heading")]
    report(any(s == "Heading 1" for s, _ in heads) and any(s == "Heading 2" for s, _ in heads),
           f"DOCX headings: {sum(s == 'Heading 1' for s, _ in heads)} x H1, "
           f"{sum(s == 'Heading 2' for s, _ in heads)} x H2")
    report(len(d.tables) == 1 and len(d.tables[0].rows) == len(HOLIDAY_TABLE),
           f"DOCX table: {len(d.tables)} table(s), {len(d.tables[0].rows)} rows")
    docx_words = sum(words(p.text) for p in d.paragraphs) + sum(
        words(c.text) for t in d.tables for r in t.rows for c in r.cells)
    report(1300 <= docx_words <= 1800, f"DOCX ~{docx_words} words")
    # XLSX
    wb = load_workbook(DATA / "finance" / "budget_2026.xlsx")
    report({"Summary", "By Department"} <= set(wb.sheetnames), f"XLSX sheets: {wb.sheetnames}")
    for name in ("Summary", "By Department"):
        ws = wb[name]
        nums = [c.value for r in ws.iter_rows(min_row=2, min_col=2) for c in r
                if isinstance(c.value, (int, float))]
        report(10 <= ws.max_row - 1 <= 30 and nums, f"XLSX '{name}': {ws.max_row - 1} data rows, "
               f"{len(nums)} numeric cells")
    # CSV
    emp = pd.read_csv(DATA / "hr" / "employees.csv")
    sal = pd.read_csv(DATA / "hr_restricted" / "salaries.csv")
    report(list(emp.columns) == ["employee_id", "name", "department", "job_title", "office", "manager",
                                 "start_date", "email"], f"employees.csv: {len(emp)} rows, columns ok")
    report(list(sal.columns) == ["employee_id", "name", "department", "salary_gbp", "bonus_pct", "band"]
           and sal["salary_gbp"].dtype.kind in "if", f"salaries.csv: {len(sal)} rows, numeric salary")
    report((emp["employee_id"].tolist() == sal["employee_id"].tolist())
           and (emp["name"].tolist() == sal["name"].tolist()), "CSV ids/names match")
    managers = set(emp["manager"].dropna())
    report(managers <= set(emp["name"]), "every manager is in employees.csv")
    report(not (DATA / "hr" / "salaries.csv").exists(), "no salaries.csv in data/hr/")
    # word counts of text formats
    md_words = words((DATA / "hr" / "parental_leave_policy.md").read_text(encoding="utf-8"))
    report(900 <= md_words <= 1400, f"parental_leave_policy.md ~{md_words} words")
    html = (DATA / "it" / "it_handbook.html").read_text(encoding="utf-8")
    html_words = words(re.sub(r"<[^>]+>", " ", html.split("<body>")[1]))
    report(1000 <= html_words <= 1500, f"it_handbook.html ~{html_words} words")
    faq_words = words((DATA / "it" / "security_faq.txt").read_text(encoding="utf-8"))
    report(400 <= faq_words <= 700, f"security_faq.txt ~{faq_words} words")
    # metadata + sizes
    for folder, meta in META.items():
        got = json.loads((DATA / folder / "_meta.json").read_text(encoding="utf-8"))
        report(got == meta, f"{folder}/_meta.json")
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    report(total < 1_000_000, f"total size {total} bytes < 1 MB")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-check", action="store_true", help="skip verification of the generated files")
    args = ap.parse_args(argv)
    generate()
    print(f"Generated sample corpus in {DATA}")
    for p in sorted(DATA.rglob("*")):
        if p.is_file():
            print(f"  {p.relative_to(DATA)}  {p.stat().st_size:,} bytes")
    if args.no_check:
        return 0
    return 0 if check() else 1


if __name__ == "__main__":
    sys.exit(main())
