"""The demo's destination catalogue: France in detail, ~40 countries with their mobile
ranges, cities and premium numbers, North America by area code, satellite networks;
each with a base cost per minute the demo's rates are generated from."""
from __future__ import annotations

from decimal import Decimal

# (prefix, name, weight, cost per minute at the cheapest carrier)
FRANCE = [
    ("33", "France", "local", "0.0060"),
    ("331", "France Paris / Ile-de-France", "local", "0.0040"),
    ("332", "France North-West", "local", "0.0042"),
    ("333", "France North-East", "local", "0.0042"),
    ("334", "France South-East", "local", "0.0042"),
    ("335", "France South-West", "local", "0.0042"),
    ("339", "France VoIP (09)", "local", "0.0045"),
    ("336", "France Mobile", "mobile", "0.0110"),
    ("337", "France Mobile", "mobile", "0.0115"),
    ("338", "France Special Services (08)", "national", "0.0300"),
    ("33800", "France Freephone", "national", "0.0150"),
    ("33805", "France Freephone", "national", "0.0150"),
    ("33806", "France Shared Cost", "national", "0.0200"),
    ("33809", "France Shared Cost", "national", "0.0200"),
    ("33810", "France Shared Cost", "national", "0.0250"),
    ("33820", "France Special Services", "national", "0.0600"),
    ("33821", "France Special Services", "national", "0.0600"),
    ("3389", "France Premium (089)", "premium", "0.2500"),
    ("33891", "France Premium 0891", "premium", "0.3000"),
    ("33892", "France Premium 0892", "premium", "0.3500"),
    ("33897", "France Premium 0897", "premium", "0.4000"),
    ("33899", "France Premium 0899", "premium", "0.6000"),
]

# country code, name, fixed cost, [(mobile prefix suffix, mobile cost)], [(city suffix, city name)], [premium suffixes]
COUNTRIES = [
    ("49", "Germany", "0.0070", [("15", "0.0160"), ("151", "0.0150"), ("152", "0.0155"), ("157", "0.0170"),
                                  ("159", "0.0165"), ("16", "0.0160"), ("160", "0.0150"), ("162", "0.0155"),
                                  ("163", "0.0170"), ("17", "0.0160"), ("170", "0.0150"), ("171", "0.0150"),
                                  ("172", "0.0155"), ("173", "0.0155"), ("174", "0.0160"), ("175", "0.0150"),
                                  ("176", "0.0165"), ("177", "0.0170"), ("178", "0.0170"), ("179", "0.0165")],
     [("30", "Berlin"), ("40", "Hamburg"), ("89", "Munich"), ("221", "Cologne"), ("69", "Frankfurt"),
      ("711", "Stuttgart"), ("211", "Dusseldorf")], ["900", "137"]),
    ("44", "United Kingdom", "0.0055", [("7", "0.0090"), ("71", "0.0085"), ("73", "0.0088"), ("74", "0.0085"),
                                        ("75", "0.0090"), ("77", "0.0085"), ("78", "0.0088"), ("79", "0.0085"),
                                        ("70", "0.1800"), ("76", "0.2500")],
     [("20", "London"), ("121", "Birmingham"), ("161", "Manchester"), ("131", "Edinburgh"), ("141", "Glasgow"),
      ("113", "Leeds"), ("117", "Bristol"), ("28", "Northern Ireland"), ("3", "Non-geographic")], ["90", "91", "98"]),
    ("34", "Spain", "0.0065", [("6", "0.0120"), ("7", "0.0125")], [("91", "Madrid"), ("93", "Barcelona")],
     ["803", "806", "807", "905"]),
    ("39", "Italy", "0.0068", [("3", "0.0140")], [("02", "Milan"), ("06", "Rome")], ["899"]),
    ("32", "Belgium", "0.0075", [("46", "0.0180"), ("47", "0.0175"), ("48", "0.0180"), ("49", "0.0175")],
     [("2", "Brussels")], ["900", "902"]),
    ("31", "Netherlands", "0.0070", [("6", "0.0190")], [("20", "Amsterdam"), ("10", "Rotterdam")],
     ["900", "906", "909"]),
    ("41", "Switzerland", "0.0110", [("75", "0.0450"), ("76", "0.0450"), ("77", "0.0460"), ("78", "0.0450"),
                                      ("79", "0.0460")], [("22", "Geneva"), ("44", "Zurich")], ["900", "901", "906"]),
    ("352", "Luxembourg", "0.0090", [("6", "0.0250")], [], []),
    ("351", "Portugal", "0.0080", [("9", "0.0180")], [("21", "Lisbon")], []),
    ("353", "Ireland", "0.0085", [("8", "0.0220")], [("1", "Dublin")], []),
    ("43", "Austria", "0.0095", [("6", "0.0320")], [("1", "Vienna")], []),
    ("48", "Poland", "0.0085", [("50", "0.0140"), ("51", "0.0140"), ("53", "0.0145"), ("57", "0.0150"),
                                 ("60", "0.0140"), ("66", "0.0145"), ("69", "0.0140"), ("72", "0.0145"),
                                 ("73", "0.0145"), ("78", "0.0150"), ("79", "0.0145"), ("88", "0.0150")],
     [("22", "Warsaw")], []),
    ("46", "Sweden", "0.0080", [("7", "0.0160")], [("8", "Stockholm")], []),
    ("47", "Norway", "0.0090", [("4", "0.0180"), ("9", "0.0180")], [("2", "Oslo")], []),
    ("45", "Denmark", "0.0085", [("2", "0.0170"), ("3", "0.0170")], [], []),
    ("212", "Morocco", "0.0950", [("6", "0.2600"), ("7", "0.2700")], [("522", "Casablanca")], []),
    ("213", "Algeria", "0.1100", [("5", "0.3400"), ("6", "0.3500"), ("7", "0.3300")], [("21", "Algiers")], []),
    ("216", "Tunisia", "0.1050", [("2", "0.3100"), ("5", "0.3000"), ("9", "0.3000")], [("71", "Tunis")], []),
    ("221", "Senegal", "0.1400", [("76", "0.2100"), ("77", "0.2200"), ("78", "0.2200")], [("33", "Dakar")], []),
    ("225", "Cote d'Ivoire", "0.1600", [("05", "0.2300"), ("07", "0.2400")], [("27", "Abidjan")], []),
    ("27", "South Africa", "0.0250", [("6", "0.0550"), ("7", "0.0550"), ("8", "0.0600")], [("11", "Johannesburg")], []),
    ("90", "Turkey", "0.0220", [("5", "0.0650")], [("212", "Istanbul")], []),
    ("7", "Russia", "0.0300", [("9", "0.0800")], [("495", "Moscow")], []),
    ("972", "Israel", "0.0120", [("5", "0.0300")], [("3", "Tel Aviv")], []),
    ("971", "United Arab Emirates", "0.1200", [("50", "0.1500"), ("52", "0.1500"), ("55", "0.1500"),
                                               ("56", "0.1500"), ("58", "0.1500")], [("4", "Dubai")], []),
    ("86", "China", "0.0090", [("13", "0.0090"), ("15", "0.0090"), ("18", "0.0090")], [("10", "Beijing")], []),
    ("91", "India", "0.0180", [("7", "0.0160"), ("8", "0.0160"), ("9", "0.0160")], [("11", "Delhi")], []),
    ("81", "Japan", "0.0280", [("70", "0.0900"), ("80", "0.0900"), ("90", "0.0900")], [("3", "Tokyo")], []),
    ("61", "Australia", "0.0150", [("4", "0.0380")], [("2", "Sydney")], ["190"]),
    ("55", "Brazil", "0.0250", [("119", "0.0700")], [("11", "Sao Paulo")], []),
    ("52", "Mexico", "0.0150", [("1", "0.0300")], [("55", "Mexico City")], []),
    ("262", "Reunion", "0.0350", [("262692", "0.1300"), ("262693", "0.1300")], [], []),
    ("590", "Guadeloupe", "0.0350", [("590690", "0.1300")], [], []),
    ("596", "Martinique", "0.0350", [("596696", "0.1300")], [], []),
    ("594", "French Guiana", "0.0400", [("594694", "0.1400")], [], []),
    ("687", "New Caledonia", "0.2200", [("7", "0.2900"), ("8", "0.2900"), ("9", "0.2900")], [], []),
    ("689", "French Polynesia", "0.2300", [("87", "0.3000"), ("89", "0.3000")], [], []),
]

SATELLITE = [("8816", "Iridium", "3.2000"), ("8817", "Iridium", "3.2000"), ("870", "Inmarsat", "4.9000")]

# North America: NANP area codes "code state/province[ city]".
US_AREAS = """
201 NJ;202 DC Washington;203 CT;205 AL;206 WA Seattle;207 ME;208 ID;209 CA;210 TX San Antonio;212 NY New York;
213 CA Los Angeles;214 TX Dallas;215 PA Philadelphia;216 OH Cleveland;217 IL;218 MN;219 IN;224 IL;225 LA;228 MS;
229 GA;231 MI;234 OH;239 FL;240 MD;248 MI;251 AL;252 NC;253 WA;254 TX;256 AL;260 IN;262 WI;267 PA;269 MI;270 KY;
276 VA;281 TX Houston;301 MD;302 DE;303 CO Denver;304 WV;305 FL Miami;307 WY;308 NE;309 IL;310 CA;312 IL Chicago;
313 MI Detroit;314 MO St. Louis;315 NY;316 KS;317 IN Indianapolis;318 LA;319 IA;320 MN;321 FL;323 CA;330 OH;334 AL;
336 NC;337 LA;339 MA;347 NY;351 MA;352 FL;360 WA;361 TX;385 UT;386 FL;401 RI;402 NE;404 GA Atlanta;405 OK;406 MT;
407 FL Orlando;408 CA San Jose;409 TX;410 MD Baltimore;412 PA Pittsburgh;413 MA;414 WI Milwaukee;
415 CA San Francisco;417 MO;419 OH;423 TN;425 WA;432 TX;434 VA;435 UT;440 OH;443 MD;469 TX;478 GA;479 AR;480 AZ;
484 PA;501 AR;502 KY Louisville;503 OR Portland;504 LA New Orleans;505 NM;507 MN;508 MA;509 WA;510 CA Oakland;
512 TX Austin;513 OH Cincinnati;515 IA;516 NY;517 MI;518 NY;520 AZ;530 CA;540 VA;541 OR;559 CA;561 FL;562 CA;
570 PA;571 VA;573 MO;580 OK;585 NY;586 MI;601 MS;602 AZ Phoenix;603 NH;605 SD;606 KY;607 NY;608 WI;609 NJ;610 PA;
612 MN Minneapolis;614 OH Columbus;615 TN Nashville;616 MI;617 MA Boston;618 IL;619 CA San Diego;620 KS;623 AZ;
626 CA;630 IL;631 NY;636 MO;646 NY New York;650 CA;651 MN;661 CA;662 MS;678 GA;702 NV Las Vegas;703 VA;
704 NC Charlotte;706 GA;707 CA;708 IL;712 IA;713 TX Houston;714 CA;715 WI;716 NY Buffalo;717 PA;718 NY New York;
719 CO;720 CO;724 PA;727 FL;732 NJ;734 MI;740 OH;754 FL;757 VA;760 CA;763 MN;765 IN;770 GA;772 FL;773 IL Chicago;
774 MA;775 NV;781 MA;785 KS;786 FL Miami;801 UT Salt Lake City;802 VT;803 SC;804 VA;805 CA;806 TX;808 HI;810 MI;
812 IN;813 FL Tampa;814 PA;815 IL;816 MO Kansas City;817 TX;818 CA;828 NC;830 TX;831 CA;832 TX;843 SC;845 NY;
847 IL;850 FL;856 NJ;857 MA;858 CA;859 KY;860 CT;862 NJ;863 FL;864 SC;865 TN;870 AR;901 TN Memphis;903 TX;
904 FL Jacksonville;907 AK;908 NJ;909 CA;910 NC;912 GA;913 KS;914 NY;915 TX;916 CA Sacramento;917 NY New York;
918 OK;919 NC;920 WI;925 CA;937 OH;941 FL;949 CA;951 CA;954 FL;956 TX;970 CO;971 OR;972 TX;973 NJ;978 MA;979 TX;
989 MI
"""
CANADA_AREAS = "416 ON Toronto;647 ON Toronto;514 QC Montreal;438 QC Montreal;604 BC Vancouver;778 BC;403 AB Calgary;" \
               "613 ON Ottawa;902 NS;905 ON"


def _areas(spec: str):
    for item in spec.replace("\n", "").split(";"):
        code, _, place = item.strip().partition(" ")
        yield code, place


def catalogue() -> list[tuple[str, str, str, Decimal]]:
    """(prefix, name, weight, base cost) of every demo destination, sorted by prefix."""
    out = [(p, n, w, Decimal(c)) for p, n, w, c in FRANCE]
    for cc, country, fixed, mobiles, cities, premiums in COUNTRIES:
        out.append((cc, country, "international", Decimal(fixed)))
        for suffix, cost in mobiles:
            prefix = suffix if suffix.startswith(cc) and len(suffix) > len(cc) + 2 else cc + suffix
            out.append((prefix, f"{country} Mobile", "mobile", Decimal(cost)))
        for suffix, city in cities:
            out.append((cc + suffix, f"{country} {city}", "international", Decimal(fixed) * Decimal("0.9")))
        for suffix in premiums:
            out.append((cc + suffix, f"{country} Premium", "premium", Decimal("0.9000")))
    out.append(("1", "USA / Canada", "international", Decimal("0.0060")))
    for code, place in _areas(US_AREAS):
        out.append(("1" + code, f"USA {place}", "international", Decimal("0.0042")))
    for code, place in _areas(CANADA_AREAS):
        out.append(("1" + code, f"Canada {place}", "international", Decimal("0.0048")))
    out += [("1800", "USA Toll-free", "international", Decimal("0.0250")),
            ("1888", "USA Toll-free", "international", Decimal("0.0250")),
            ("1900", "USA Premium", "premium", Decimal("1.1000"))]
    out += [(p, n, "premium", Decimal(c)) for p, n, c in SATELLITE]
    return sorted({prefix: (prefix, *rest) for prefix, *rest in reversed(out)}.values())
