"""Who the people are: names (Latin and native script), email addresses, phone numbers, companies, reps.

Every generated email address and phone number is unique across people (after normalisation), so two
people can only ever be linked by what the plan links on purpose. Phone numbers are checked with the
`phonenumbers` library: every written format of a person's number parses (default region IL) to the same
valid E.164 number.
"""

from __future__ import annotations

import random

import phonenumbers

from sandbox.world.model import DYNAMICS, HUBSPOT, SALESFORCE, Company, Owner

# (Latin, native script)
HEBREW_FIRST = [
    ("Dana", "דנה"), ("Yossi", "יוסי"), ("Noa", "נועה"), ("Avi", "אבי"), ("Michal", "מיכל"), ("Itai", "איתי"),
    ("Tamar", "תמר"), ("Oren", "אורן"), ("Shira", "שירה"), ("Eitan", "איתן"), ("Yael", "יעל"),
    ("Ronit", "רונית"), ("Moshe", "משה"), ("Rivka", "רבקה"), ("Omer", "עומר"), ("Maya", "מאיה"),
    ("Lior", "ליאור"), ("Gal", "גל"), ("Noam", "נועם"), ("Hila", "הילה"), ("Amit", "עמית"), ("Roni", "רוני"),
    ("Daniel", "דניאל"), ("Sarah", "שרה"), ("David", "דוד"), ("Ayelet", "איילת"), ("Eli", "אלי"),
    ("Orly", "אורלי"), ("Nir", "ניר"), ("Keren", "קרן"), ("Yonatan", "יונתן"), ("Adi", "עדי"),
]
HEBREW_LAST = [
    ("Cohen", "כהן"), ("Levi", "לוי"), ("Mizrahi", "מזרחי"), ("Peretz", "פרץ"), ("Biton", "ביטון"),
    ("Dahan", "דהן"), ("Avraham", "אברהם"), ("Friedman", "פרידמן"), ("Azoulay", "אזולאי"), ("Katz", "כץ"),
    ("Malka", "מלכה"), ("Amar", "עמר"), ("Shapira", "שפירא"), ("Ben-David", "בן דוד"), ("Golan", "גולן"),
    ("Ohana", "אוחנה"), ("Segal", "סגל"), ("Gabay", "גבאי"), ("Hadad", "חדד"), ("Rosenberg", "רוזנברג"),
    ("Weiss", "וייס"), ("Yosef", "יוסף"), ("Sasson", "ששון"), ("Ben-Ami", "בן עמי"), ("Tal", "טל"),
]
ARABIC_FIRST = [
    ("Mohammed", "محمد"), ("Ahmad", "أحمد"), ("Rania", "رانيا"), ("Lina", "لينا"), ("Omar", "عمر"),
    ("Fatima", "فاطمة"), ("Yousef", "يوسف"), ("Samir", "سمير"), ("Nour", "نور"), ("Khaled", "خالد"),
    ("Layla", "ليلى"), ("Hassan", "حسن"), ("Mariam", "مريم"), ("Tariq", "طارق"), ("Huda", "هدى"),
    ("Karim", "كريم"), ("Salma", "سلمى"), ("Ali", "علي"), ("Rami", "رامي"), ("Dina", "دينا"), ("Amal", "أمل"),
    ("Ziad", "زياد"), ("Jamal", "جمال"), ("Reem", "ريم"),
]
ARABIC_LAST = [
    ("Khalil", "خليل"), ("Haddad", "حداد"), ("Nasser", "ناصر"), ("Mansour", "منصور"), ("Saleh", "صالح"),
    ("Abu-Hanna", "أبو حنا"), ("Khoury", "خوري"), ("Darwish", "درويش"), ("Jaber", "جابر"), ("Odeh", "عودة"),
    ("Zoabi", "زعبي"), ("Hamdan", "حمدان"), ("Masri", "مصري"), ("Awad", "عوض"), ("Bishara", "بشارة"),
    ("Suleiman", "سليمان"), ("Qasem", "قاسم"), ("Abbas", "عباس"), ("Taha", "طه"), ("Shehadeh", "شحادة"),
]
ENGLISH_FIRST = [
    "Emily", "James", "Olivia", "Michael", "Sophie", "Daniel", "Emma", "Jack", "Grace", "Thomas", "Chloe",
    "Ryan", "Hannah", "Ethan", "Lucy", "Noah", "Amelia", "Benjamin", "Isabella", "Samuel", "Rachel", "Adam",
]
ENGLISH_LAST = [
    "Clark", "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker", "Wright",
    "Thompson", "Hughes", "Green", "Hall", "Wood", "Harris", "Lewis", "Martin", "Cooper", "King", "O'Brien",
    "Miller",
]
EMOJI = ["🌸", "😊", "🚀", "💙", "⭐", "🎉"]

FREE_MAIL = [("gmail.com", 45), ("walla.co.il", 10), ("yahoo.com", 8), ("hotmail.com", 10), ("outlook.com", 12),
             ("icloud.com", 5)]

COMPANY_FIRST = ["Cedar", "Negev", "Carmel", "Yarden", "Galil", "Orbit", "Nova", "Sahar", "Levant", "Jaffa",
                 "Harbor", "Tamar", "Zohar", "Arava", "Hermon", "Kinneret", "Marom", "Shaked", "Rimon",
                 "Alon", "Nahar", "Barak", "Ofek", "Lotus", "Atlas", "Pioneer", "Summit", "Bluebird"]
COMPANY_SECOND = [("Labs", "COMPUTER_SOFTWARE"), ("Systems", "INFORMATION_TECHNOLOGY_AND_SERVICES"),
                  ("Logistics", "LOGISTICS_AND_SUPPLY_CHAIN"), ("Foods", "FOOD_BEVERAGES"),
                  ("Health", "HOSPITAL_HEALTH_CARE"), ("Finance", "FINANCIAL_SERVICES"),
                  ("Media", "MARKETING_AND_ADVERTISING"), ("Retail", "RETAIL"), ("Energy", "UTILITIES"),
                  ("Insurance", "INSURANCE"), ("Motors", "AUTOMOTIVE"), ("Academy", "E_LEARNING"),
                  ("Hotels", "HOSPITALITY"), ("Telecom", "TELECOMMUNICATIONS"), ("Pharma", "PHARMACEUTICALS")]
TLDS = [("co.il", 50), ("com", 40), ("io", 10)]

IL_MOBILE = ["50", "52", "53", "54", "55", "58"]
IL_LANDLINE = ["2", "3", "4", "8", "9"]
US_AREAS = ["212", "415", "646", "312", "617", "206", "303", "512", "718", "305"]
UK_MOBILE = ["7400", "7500", "7712", "7800", "7900", "7550"]


def weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    total = sum(w for _, w in options)
    roll = rng.random() * total
    for value, weight in options:
        roll -= weight
        if roll < 0:
            return value
    return options[-1][0]


def normalise_email(value: str) -> str:
    return value.strip().lower()


def e164(value: str) -> str | None:
    """The E.164 form of a written number (default region IL), None when it does not parse as valid."""
    try:
        number = phonenumbers.parse(value, "IL")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Registry:
    """Every email address and phone number handed out (normalised), so no two people share one."""

    def __init__(self) -> None:
        self.emails: set[str] = set()
        self.phones: set[str] = set()

    def claim_email(self, value: str) -> bool:
        key = normalise_email(value)
        if key in self.emails:
            return False
        self.emails.add(key)
        return True

    def claim_phone(self, value: str) -> bool:
        if value in self.phones:
            return False
        self.phones.add(value)
        return True


# ------------------------------------------------------------------------------------------------ names
def pick_name(rng: random.Random, culture: str) -> tuple[str, str, str | None, str | None]:
    """(first, last, first in native script, last in native script)."""
    if culture == "hebrew":
        (first, first_n), (last, last_n) = rng.choice(HEBREW_FIRST), rng.choice(HEBREW_LAST)
        return first, last, first_n, last_n
    if culture == "arabic":
        (first, first_n), (last, last_n) = rng.choice(ARABIC_FIRST), rng.choice(ARABIC_LAST)
        return first, last, first_n, last_n
    return rng.choice(ENGLISH_FIRST), rng.choice(ENGLISH_LAST), None, None


def pick_culture(rng: random.Random) -> str:
    return weighted(rng, [("hebrew", 50), ("arabic", 25), ("english", 25)])


# ----------------------------------------------------------------------------------------------- emails
def _ascii(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isascii() and (ch.isalnum() or ch in "-'"))


def make_email(rng: random.Random, registry: Registry, first: str, last: str, domain: str,
               personal: bool) -> str:
    """A unique, realistic address for the name at the domain (lower-case)."""
    f = _ascii(first)
    l_ = _ascii(last).replace("'", "" if rng.random() < 0.7 else "'")   # o'brien is a valid local part
    l_ = l_.replace("-", "" if rng.random() < 0.5 else "-")
    patterns = [(f"{f}.{l_}", 45), (f"{f[0]}{l_}", 15), (f"{f}{l_}", 10), (f"{f[0]}.{l_}", 10),
                (f"{f}_{l_}", 5), (f"{f}.{l_[0]}", 5)]
    if personal:
        patterns.append((f"{f}{l_}{rng.randint(1, 99)}", 15))
    first_choice = weighted(rng, patterns)
    others = [p for p, _ in patterns if p != first_choice]
    rng.shuffle(others)
    for local in [first_choice, *others]:
        if personal and rng.random() < 0.03:
            local = f"{local}+crm"    # plus-addressing: valid, and must not be stripped
        address = f"{local}@{domain}"
        if registry.claim_email(address):
            return address
    for n in range(2, 10_000):
        address = f"{f}.{l_}{n}@{domain}"
        if registry.claim_email(address):
            return address
    raise RuntimeError("no free email address")  # pragma: no cover


def free_mail_domain(rng: random.Random) -> str:
    return weighted(rng, FREE_MAIL)


def email_variant(rng: random.Random, email: str, system: str) -> str:
    """How a CRM stores the address: HubSpot lower-cases and trims; Salesforce keeps the case as typed
    (capitalised names, upper-case domain); Dataverse keeps case and stray surrounding whitespace."""
    if system == HUBSPOT:
        return email
    roll = rng.random()
    local, _, domain = email.partition("@")
    if system == SALESFORCE:
        if roll < 0.25:
            return ".".join(part[:1].upper() + part[1:] for part in local.split(".")) + "@" + domain
        if roll < 0.35:
            return local + "@" + domain.upper()
        if roll < 0.40:
            return email.upper()
        return email      # Salesforce validates and trims the Email field: case variants only
    if roll < 0.15:
        return " " + email
    if roll < 0.30:
        return email + "  "
    if roll < 0.45:
        return local.capitalize() + "@" + domain
    if roll < 0.50:
        return "\t" + email.upper() + " "
    return email


# ----------------------------------------------------------------------------------------------- phones
def _valid(country: int, national: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=country,
                                                                 national_number=int(national)))


def make_phone(rng: random.Random, registry: Registry, culture: str) -> str:
    """A unique valid number, E.164."""
    for _ in range(200):
        roll = rng.random()
        if culture != "english" or roll < 0.3:
            country, national = 972, rng.choice(IL_MOBILE) + f"{rng.randint(0, 9_999_999):07d}"
        elif roll < 0.75:
            country, national = 1, rng.choice(US_AREAS) + str(rng.randint(200, 999)) + f"{rng.randint(0, 9999):04d}"
        else:
            country, national = 44, rng.choice(UK_MOBILE) + f"{rng.randint(0, 999_999):06d}"
        candidate = f"+{country}{national}"
        if _valid(country, national) and registry.claim_phone(candidate):
            return candidate
    raise RuntimeError("no free phone number")  # pragma: no cover


def make_landline(rng: random.Random, registry: Registry) -> str:
    for _ in range(200):
        national = rng.choice(IL_LANDLINE) + str(rng.randint(2_000_000, 9_999_999))
        candidate = f"+972{national}"
        if _valid(972, national) and registry.claim_phone(candidate):
            return candidate
    raise RuntimeError("no free phone number")  # pragma: no cover


def phone_formats(number: str) -> list[str]:
    """Ways people write this E.164 number (all parse back to it with default region IL)."""
    if number.startswith("+972"):
        n = number[4:]
        if len(n) == 9:   # mobile 5X-XXX-XXXX
            return [f"+972 {n[:2]}-{n[2:5]}-{n[5:]}", f"0{n[:2]}-{n[2:]}", f"972{n}", number,
                    f"0{n[:2]} {n[2:5]} {n[5:]}", f"00972-{n[:2]}-{n[2:]}", f"+972-{n[:2]}-{n[2:]}"]
        return [f"0{n[:1]}-{n[1:]}", f"+972 {n[:1]}-{n[1:4]}-{n[4:]}", f"972 {n[:1]} {n[1:4]} {n[4:]}", number]
    if number.startswith("+1"):
        n = number[2:]
        return [f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}", f"(+1) {n[:3]}-{n[3:6]}-{n[6:]}", f"001-{n[:3]}-{n[3:6]}-{n[6:]}",
                number, f"+1 {n[:3]} {n[3:6]} {n[6:]}"]
    n = number[3:]
    return [f"+44 {n[:4]} {n[4:]}", f"0044 {n[:4]} {n[4:]}", number, f"(+44) {n[:4]}-{n[4:7]}-{n[7:]}"]


_SYSTEM_FORMATS = {HUBSPOT: (0, 3, 4), SALESFORCE: (1, 0, 6), DYNAMICS: (2, 4, 5)}


def phone_variant(rng: random.Random, number: str, system: str) -> str:
    formats = phone_formats(number)
    if rng.random() < 0.7:
        preferred = [formats[i] for i in _SYSTEM_FORMATS[system] if i < len(formats)]
        return rng.choice(preferred)
    return rng.choice(formats)


# -------------------------------------------------------------------------------------- companies, reps
def make_companies(rng: random.Random, registry: Registry, count: int) -> list[Company]:
    companies: list[Company] = []
    names: set[str] = set()
    domains: set[str] = set()
    while len(companies) < count:
        first = rng.choice(COMPANY_FIRST)
        second, industry = rng.choice(COMPANY_SECOND)
        name = f"{first} {second}"
        if name in names:
            name = f"{first} {second} {rng.choice(['Ltd', 'Group', 'Israel', 'International'])}"
            if name in names:
                continue
        tld = weighted(rng, TLDS)
        domain = f"{first}{second}".lower() + "." + tld
        if domain in domains:
            domain = f"{first}-{second}".lower() + "." + tld
            if domain in domains:
                continue
        names.add(name)
        domains.add(domain)
        companies.append(Company(key=len(companies) + 1, name=name, domain=domain, industry=industry,
                                 phone=make_landline(rng, registry),
                                 employees=rng.choice([12, 25, 40, 80, 150, 300, 750, 2000])))
    return companies


OWNER_NAMES = [("Yael", "Barak"), ("Ahmad", "Nassar"), ("Sarah", "Goldberg"), ("Tom", "Reed"),
               ("Lina", "Haddad"), ("Ofir", "Mor"), ("Maya", "Shani"), ("Jonathan", "Price"),
               ("Rana", "Khatib"), ("Eyal", "Dror")]


def make_owners(rng: random.Random, created: int) -> dict[str, list[Owner]]:
    owners: dict[str, list[Owner]] = {}
    for system, count in ((HUBSPOT, 6), (SALESFORCE, 8), (DYNAMICS, 7)):
        names = rng.sample(OWNER_NAMES, count)
        owners[system] = [Owner(system, first, last, f"{first.lower()}.{last.lower()}@journeyhub-demo.co.il",
                                created + rng.randint(0, 20) * 3_600) for first, last in names]
    return owners
