"""Generated PII records that are not drawn from the name gazetteer's sources (Faker, US Census):
names written here by hand from Central/Northern European and other naming traditions (with
their diacritics), written the ways real text writes them (lower case, family name alone,
"Family, Given", all caps), and phone numbers in explicit national formats (unbroken digit
runs with and without ``+`` and country code, German ``+49 (0)``, Italian mobiles, ...).

Two disjoint splits, seeded and reproducible: ``tune`` (rules may be tuned on it) and
``test`` (report only). The name lists and the sentence templates are each cut in two by a
stable hash, so no name or template of ``test`` is seen while tuning.

Records have the shape of the presidio-research set (``full_text``, ``spans``), so
``python -m bench.pii_leak --generated test`` measures them like the labelled data.
"""

from __future__ import annotations

import hashlib
import random

# given names, family names per tradition (hand-written; many are in no gazetteer list)
NAMES = {
    "cs": ("Bořivoj Zdeňka Přemysl Libuše Radovan Jitka Vojtěch Blažena Kryštof Drahomíra Čestmír Ludmila Dalibor Květa",
           "Dvořáková Kratochvíl Šťastný Procházková Řezníček Vondráček Hrubeš Žižka Klečková Chalupa Ondráčková Štěpánek"),
    "sk": ("Ľubomír Zuzana Ďurko Miloslava Branislav Katarína Dušan Jarmila Ondrej Ľudmila Radoslav Alžbeta",
           "Hrušovský Kováčiková Ďuriš Mikloško Ťapák Šimečka Žilinská Vrábel Čaplovič Hlinková Mečiarová Bútora"),
    "pl": ("Przemysław Małgorzata Grzegorz Jadwiga Wojciech Bożena Zbigniew Agnieszka Jędrzej Urszula Mścisław Wiesława",
           "Wróblewski Krzyżanowska Błaszczykowski Szczęsny Żółtowska Gołębiewski Chmielewska Kędzierski Pawłowska Ślusarczyk Wąsik Dąbrowska"),
    "hu": ("Zsófia Gergő Boglárka Levente Enikő Botond Ildikó Csongor Réka Tihamér Hajnalka Ödön",
           "Szőke Gyöngyösi Kovácsné Bánffy Fekete-Győr Hajdú Szénási Törőcsik Vörösmarty Ördög Pálfi Csizmadia"),
    "fi": ("Aino Eero Tuulikki Väinö Kyllikki Jussi Annikki Ilmari Sirkka Onni Hilkka Toivo",
           "Järvinen Mäkeläinen Hämäläinen Kärkkäinen Väisänen Pöyhönen Lähteenmäki Räsänen Kyllönen Ylönen Heikkilä Söderholm"),
    "sv": ("Björn Märta Sixten Ingegerd Åke Solveig Torbjörn Gunborg Ragnvald Ylva Stig Birgitta",
           "Lindqvist Åkesson Sjöberg Ångström Löfgren Bergström Nyqvist Hägglund Öberg Sandström Strömqvist Wallén"),
    "no": ("Øystein Solveig Ragnhild Torstein Åsmund Gunnhild Sigrun Eirik Liv Vebjørn Torill Håkon",
           "Bjørnstad Sæther Haugland Østby Tvedt Aasheim Gjerstad Løvås Kvamme Rønning Ødegård Strand"),
    "da": ("Søren Mette Bjarke Lærke Mads Ditte Asger Signe Villads Trine Esben Bodil",
           "Kjærgaard Søndergaard Lindholm Mølgaard Nørgaard Frederiksen Brøndum Højbjerg Vestergaard Damsgaard Krogh Bæk"),
    "is": ("Sigurður Guðrún Þórir Ásdís Haraldur Hrafnhildur Eyjólfur Þóra Ragnheiður Snorri Bergþóra Kjartan",
           "Guðmundsdóttir Þorsteinsson Sigurðardóttir Ólafsson Hjálmarsson Einarsdóttir Björnsson Ragnarsdóttir Þórðarson Gunnarsdóttir Jónsson Pálsdóttir"),
    "et": ("Tõnu Piret Jüri Maarja Rein Külli Toomas Ülle Mart Helje Priit Kadri",
           "Tamm Saar Sepp Mägi Kask Rebane Ilves Pärn Kõiv Lepik Õunapuu Jõgi"),
    "lv": ("Jānis Ilze Māris Dace Uldis Inese Gatis Līga Raimonds Zane Edgars Baiba",
           "Bērziņš Kalniņa Ozoliņš Liepiņa Krūmiņš Vītola Zariņš Pētersone Jansons Kļaviņa Grīnbergs Lāce"),
    "lt": ("Vytautas Rūta Mindaugas Eglė Darius Gintarė Saulius Jūratė Rimantas Aušra Tomas Dalia",
           "Kazlauskas Petrauskienė Jankauskas Žukauskaitė Paulauskas Butkienė Šimkus Vasiliauskaitė Urbonas Navickienė Stankevičius Grigaliūnaitė"),
    "de": ("Wolfgang Hannelore Jörg Gisela Torsten Waltraud Henning Roswitha Detlef Irmgard Götz Ulrike",
           "Schäfer Müller-Lüdenscheidt Großkopf Böhm Kühnert Weißenborn Nüßlein Hölzl Brückner Jäckel Löffler Straßburger"),
    "nl": ("Joost Femke Sjoerd Marijke Wouter Anouk Gijs Ilse Maarten Sanne Thijs Lieke",
           "van der Veen de Groot Bakker Visser Smit Vermeulen van den Broek Dekker Brouwer Mulder de Vries Hendriks"),
    "pt": ("João Conceição Gonçalo Inês Sebastião Leonor Estêvão Graça Tomás Fátima Rui Joana",
           "Gonçalves Magalhães Conceição Araújo Simões Loureiro Brandão Falcão Antunes Guimarães Assunção Peixoto"),
    "tr": ("Çağrı Gülşen Oğuz Şebnem Ümit Özlem İlker Büşra Tuğrul Nurşen Ertuğrul Sevgül",
           "Yılmaz Öztürk Çelik Şahin Doğan Aydın Güneş Kılıç Özdemir Çakır Erdoğan Aksoy"),
    "ro": ("Ștefan Ioana Răzvan Mădălina Costel Smaranda Tudor Roxana Mircea Anișoara Horia Luminița",
           "Popescu Ionescu Rădulescu Constantinescu Ștefănescu Dumitrașcu Bălan Țurcanu Munteanu Vlădescu Mărgineanu Oprea"),
    "yo": ("Oluwaseun Adebayo Folasade Chukwuemeka Ngozi Babatunde Ifeoluwa Obinna Temitope Chiamaka Olumide Funmilayo",
           "Adeyemi Okonkwo Balogun Nwachukwu Oyelaran Eze Adebanjo Okafor Ogunleye Chukwu Adesanya Obi"),
    "vi": ("Nguyễn Thị Hoa Trần Minh Đức Phạm Thu Hương Lê Quang Huy",
           "Nguyễn Trần Phạm Hoàng Huỳnh Võ Đặng Bùi Đỗ Hồ Ngô Dương"),
}
# Phone formats per country: X is a random digit, other characters are kept.
PHONES = {
    "de": ["+49 30 XXXXXXXX", "+49(0)30 XXXXXXX", "+49 (0) 8X XXXX XXXX", "030 XXXXXXXX", "0049 30 XXXXXXX",
           "+4930XXXXXXXXX", "0176 XXXXXXXX", "+49 176 XXXXXXXX", "0176/XXXXXXXX", "+49 (0)176 XXXX XXXX", "0176XXXXXXXX"],
    "it": ["+39 333 XXX XXXX", "333 XXXXXXX", "333XXXXXXX", "+39333XXXXXXX", "06 XXXX XXXX", "+39 06 XXXXXXXX",
           "+39 347 XXXXXXX", "0039 333 XXXXXXX", "347-XXXXXXX"],
    "fr": ["+33 6 XX XX XX XX", "06 XX XX XX XX", "06XXXXXXXX", "+336XXXXXXXX", "06.XX.XX.XX.XX", "+33 (0)1 XX XX XX XX"],
    "uk": ["+44 20 7XXX XXXX", "020 7XXX XXXX", "07700 XXXXXX", "+447700XXXXXX", "(020) 7XXX XXXX", "+44 (0)7700 XXXXXX"],
    "us": ["(212) XXX-XXXX", "212-XXX-XXXX", "212.XXX.XXXX", "212XXXXXXX", "+1 212 XXX XXXX", "+1212XXXXXXX",
           "1-212-XXX-XXXX", "212 XXX XXXX xXXX", "+1 (212) XXX-XXXX"],
    "nl": ["+31 6 XXXXXXXX", "06-XXXXXXXX", "020 XXX XXXX", "+316XXXXXXXX", "0031 20 XXXXXXX"],
    "es": ["+34 612 XX XX XX", "612 XXX XXX", "612XXXXXX", "+34612XXXXXX"],
    "pl": ["+48 512 XXX XXX", "512-XXX-XXX", "512XXXXXX", "+48512XXXXXX", "(22) XXX XX XX"],
    "se": ["+46 70 XXX XX XX", "070-XXX XX XX", "070XXXXXXX", "+4670XXXXXXX", "08-XXX XXX XX"],
    "cz": ["+420 601 XXX XXX", "601 XXX XXX", "+420601XXXXXX", "00420 601 XXX XXX"],
    "ch": ["+41 44 XXX XX XX", "044 XXX XX XX", "+4144XXXXXXX", "07X XXX XX XX"],
    "at": ["+43 1 XXXXXXX", "0664 XXXXXXX", "+43 664 XXXXXXX", "+43664XXXXXXX"],
    "in": ["+91 X8XXX XXXXX", "X8XXXXXXXX", "+91X8XXXXXXXX", "0X8XXX XXXXX"],
    "br": ["+55 11 XXXXX-XXXX", "(11) XXXXX-XXXX", "+5511XXXXXXXXX"],
    "jp": ["+81 3-XXXX-XXXX", "03-XXXX-XXXX", "0X0-XXXX-XXXX", "+81X0XXXXXXXX"],
    "au": ["+61 2 XXXX XXXX", "0412 XXX XXX", "+61412XXXXXX", "(02) XXXX XXXX"],
}
# Sentence templates. {P} a full name, {G} a given name, {F} a family name alone, {N} a phone number.
TEMPLATES = [
    "The minutes were taken by {P} and circulated on Friday.",
    "I spoke with {F} yesterday about the renewal of the lease.",
    "Please forward the signed copy to {P}, who handles the account.",
    "{F} approved the budget after the second review.",
    "Thanks to {G} for the quick turnaround on the drawings.",
    "The complaint was filed by {P} against the landlord.",
    "According to {F}, the shipment left the warehouse on time.",
    "Our new colleague {P} starts on the first of the month.",
    "Reach me at {N} if anything changes.",
    "You can call {N} during office hours.",
    "My mobile is {N}.",
    "{P}, {N}",
    "Contact person: {P}, tel. {N}",
    "Or try {N} after six.",
    "{N} is the number to use from abroad.",
    "The courier will ring {N} on arrival.",
    "Ask {G} {F} whether the invoice was paid.",
    "The report by {F} and {F2} was accepted without changes.",
    "We met {P} at the trade fair in the spring.",
    "The tenant, {P}, reported a leak in the kitchen.",
    "meeting notes: {p} will send the draft, {f} reviews it.",
    "spoke to {p} today, she confirmed the delivery date.",
    "Signed on behalf of the company by {FC}.",
    "{PU} - SITE MANAGER",
    "Mr {F} declined to comment on the proposal.",
    "The witness, Ms {F}, arrived late.",
    "{G} said the parcel was damaged.",
    "Attendees: {P}, {P2} and {P3}.",
    "Phone {N} or write to the office.",
    "WhatsApp: {N}",
    "the number {n} belongs to the front desk",
    "Send the keys to {P} before noon.",
]


def _half(key: str) -> int:
    return hashlib.sha256(key.encode()).digest()[0] % 2


def _split_items(items: list[str], split: str) -> list[str]:
    want = 0 if split == "tune" else 1
    return [x for x in items if _half(x) == want]


def _phone(fmt: str, rng: random.Random) -> str:
    out = [str(rng.randint(0, 9)) if c == "X" else c for c in fmt]
    return "".join(out)


def generate(split: str = "test", n: int = 600, seed: int = 7) -> list[dict]:
    """``n`` records of the split ``tune`` or ``test`` (disjoint names and templates)."""
    if split not in ("tune", "test"):
        raise ValueError(f"split must be 'tune' or 'test', not {split!r}")
    rng = random.Random(f"{split}-{seed}")
    given = [(loc, g) for loc, (gs, _fs) in NAMES.items() for g in gs.split()]
    family = [(loc, f) for loc, (_gs, fs) in NAMES.items() for f in _split_family(fs)]
    given = [x for x in given if _half(x[1]) == (0 if split == "tune" else 1)]
    family = [x for x in family if _half(x[1]) == (0 if split == "tune" else 1)]
    formats = [f for fs in PHONES.values() for f in fs]
    templates = _split_items(TEMPLATES, split)
    records = []
    for _ in range(n):
        template = rng.choice(templates)
        records.append(_fill(template, rng, given, family, formats))
    return records


def _split_family(text: str) -> list[str]:
    """Family names, keeping particles with their name ("van der Veen")."""
    out: list[str] = []
    words = text.split()
    i = 0
    while i < len(words):
        j = i
        while words[j] in ("van", "der", "den", "de") and j + 1 < len(words):
            j += 1
        out.append(" ".join(words[i : j + 1]))
        i = j + 1
    return out


def _fill(template: str, rng: random.Random, given: list, family: list, formats: list) -> dict:
    def full() -> str:
        g, f = rng.choice(given)[1], rng.choice(family)[1]
        return rng.choice([f"{g} {f}", f"{g} {f}", f"{f}, {g}", f"{g} {f[0].upper()}."]) if rng.random() < 0.15 else f"{g} {f}"

    values = {
        "P": full, "P2": full, "P3": full,
        "G": lambda: rng.choice(given)[1],
        "F": lambda: rng.choice(family)[1], "F2": lambda: rng.choice(family)[1],
        "p": lambda: full().lower(), "f": lambda: rng.choice(family)[1].lower(),
        "FC": lambda: full(), "PU": lambda: full().upper(),
        "N": lambda: _phone(rng.choice(formats), rng), "n": lambda: _phone(rng.choice(formats), rng),
    }
    text, spans, pos = "", [], 0
    for literal, field, _spec, _conv in __import__("string").Formatter().parse(template):
        text += literal
        if field is None:
            continue
        value = values[field]()
        kind = "PHONE_NUMBER" if field in ("N", "n") else "PERSON"
        spans.append({"entity_type": kind, "entity_value": value, "start_position": len(text),
                      "end_position": len(text) + len(value)})
        text += value
    del pos
    return {"full_text": text, "spans": spans}
