#!/usr/bin/env python3
"""Write the sample documents of the formats that need OCR or an Office/e-mail library:

    sample_docs/facilities/landlord-letter-facade-works-2025-scan.pdf   scanned letter, 2 pages, no text layer
    sample_docs/offices/tokyo/building-power-outage-notice-2025-ja-scan.pdf   scanned notice in Japanese
    sample_docs/sales/hx220-sales-training-2025.pptx                   deck with speaker notes
    sample_docs/sales/installation-and-training-prices-2025.xlsx       price-list workbook
    sample_docs/mail/2025-03-04-hamburg-garage-floor-sealing.eml       with a PDF attachment
    sample_docs/mail/2025-02-12-halden-cloud-maintenance-windows.eml   HTML and plain text
    sample_docs/mail/2025-01-08-us-holiday-hotline-hours.msg           Outlook .msg

Run from the repository root: `.venv/bin/python scripts/make_sample_formats.py`. The Japanese scan
needs a Japanese font (Debian: fonts-ipafont-gothic). The output is reproducible (fixed seeds,
dates and zip timestamps). The texts below are the source of truth for benchmarks/ocr.py, which
measures OCR's character error rate against them.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import docgen  # noqa: E402

OUT = ROOT / "sample_docs"

LANDLORD_LETTER = [
    ("HafenCity Quartier Verwaltung GmbH", [
        "Grosser Grasbrook 14, 20457 Hamburg. Property management for Lagerhausstrasse 9.",
        "To: Halden Instruments GmbH, Office management, Ms Birte Claussen. Hamburg, 24 February 2025.",
        "Subject: Facade renovation of the building Lagerhausstrasse 9 from 5 May to 25 July 2025.",
        "Dear Ms Claussen, we would like to inform you that the facade of the building will be cleaned, "
        "repaired and given new window seals between 5 May and 25 July 2025. A scaffold will stand on the "
        "water side and on the courtyard side for the whole period. The scaffold is put up in the week of "
        "28 April and taken down in the week of 28 July.",
        "During the works the courtyard entrance to the bike room is closed. Tenants reach the bike room "
        "through the ground floor corridor next to the service centre. The 30 racks in the courtyard "
        "cannot be used from 28 April to 1 August; please ask your employees to use the racks on the "
        "forecourt instead.",
        "The assembly point for fire alarms on the forecourt stays where it is. The scaffold has its own "
        "escape stairs, which must be kept free.",
        "Kind regards, Henrik Lorenzen, Property manager, telephone 040 5559 8120.",
    ]),
    ("Schedule of works by floor", [
        "Windows must stay closed and blinds must be raised on the floors where work is done, so that the "
        "workers can reach the frames. Noisy work (drilling, grinding) takes place only between 8:00 and "
        "13:00.",
        "Weeks 19 and 20 (5 to 16 May): ground floor and 1st floor.",
        "Weeks 21 and 22 (19 to 30 May): 2nd floor.",
        "Weeks 23 to 25 (2 to 20 June): 3rd floor, including the windows of the HIL test rack room.",
        "Weeks 26 and 27 (23 June to 4 July): 4th floor.",
        "Weeks 28 to 30 (7 to 25 July): 5th floor and roof edge.",
        "Questions about the schedule: Henrik Lorenzen, or the site manager of Nordbau Fassaden GmbH, "
        "Ms Petra Jessen, telephone 0171 555 2290.",
    ]),
]

TOKYO_OUTAGE_NOTICE = [
    ("ビル法定電気設備点検に伴う停電のお知らせ", [
        "ハルデン・インスツルメンツ株式会社 東京オフィスの皆様へ。ベイフロント芝浦ビル管理室より。",
        "2025年4月12日（土）8時から17時まで、法定電気設備点検のためビル全館が停電します。",
        "停電中はエレベーター、空調、入館ゲート、9階の電源がすべて停止します。",
        "デモラボの機器とサーバーは、4月11日（金）18時までに必ず停止してください。",
        "冷蔵庫の中身は前日までに持ち帰ってください。",
        "停電中の入館はできません。急ぎの作業は翌週に予定してください。",
        "問い合わせ先：ビル管理室 03-5555-0190、社内の担当は東京オフィス総務（内線9100）です。",
    ]),
]

# sample_docs/ja: a scanned notice (image) and an e-mail, in Japanese
TOKYO_FIRE_DRILL_NOTICE = [
    ("消防訓練の実施について（お知らせ）", [
        "ベイフロント芝浦ビル 入居企業各位　ビル防災センター",
        "2025年9月5日（金）14時から15時まで、全館合同の消防訓練を行います。",
        "14時に非常ベルが鳴りますので、各階の自衛消防隊員の誘導で非常階段を使って避難してください。",
        "集合場所は芝浦中央公園です。到着後、各社の責任者が人数を防災センターへ報告します。",
        "当日は訓練のため、14時から14時30分までエレベーターが停止します。",
        "来客の予定は15時以降にしてください。",
        "消火器の使い方と煙体験の講習を、希望者向けに15時から1階ロビーで行います。",
    ]),
]

EXHIBITION_MAIL = {
    "subject": "【応援のお願い】6月 国際食品工業展の説明員",
    "sender": "Yui Nakamura <yui.nakamura@halden-instruments.example>",
    "to": "tokyo-all@halden-instruments.example",
    "date": "Mon, 02 Jun 2025 09:12:00 +0900",
    "body": "東京オフィスの皆さん\n\n"
            "営業の中村です。6月11日（水）から13日（金）まで東京ビッグサイトで開かれる国際食品工業展に、"
            "当社の小間（東4ホール、小間番号 4-218）を出します。\n\n"
            "来場者への説明を担当できる方を、エンジニアリングとサポートから各日2名ずつ募集します。"
            "HX-220 のデモと Halden Cloud の画面の説明をお願いします。台本と想定問答は事前にお送りします。\n\n"
            "・集合：各日 8:30、小間の前（入場証は前日までに配ります）\n"
            "・服装：会社のポロシャツ（受付で配布）と黒っぽいパンツ、歩きやすい靴\n"
            "・昼食代として1日1,500円を ExpenseFlow で精算できます\n"
            "・交通費は自宅から会場までの実費を精算してください\n\n"
            "参加できる日を6月4日（水）までにこのメールへの返信で教えてください。"
            "土日をはさむ準備と撤収に参加した方には代休があります。\n\n中村 結衣（営業）",
}


def build_japanese(out: Path = OUT) -> list[Path]:
    """sample_docs/ja: the scanned fire drill notice (PNG, no text but the pixels) and an e-mail."""
    (out / "ja" / "notices").mkdir(parents=True, exist_ok=True)
    (out / "ja" / "mail").mkdir(parents=True, exist_ok=True)
    m = EXHIBITION_MAIL
    mail = docgen.make_email(m["subject"], m["sender"], m["to"], m["date"], m["body"],
                             message_id="<exhibition-2025-06@halden-instruments.example>")
    return [docgen.make_scan(out / "ja" / "notices" / "2025-09-fire-drill-notice-scan.png", TOKYO_FIRE_DRILL_NOTICE,
                             japanese=True, dpi=150, seed=3),
            docgen.write_eml(out / "ja" / "mail" / "2025-06-02-food-expo-booth-staff.eml", mail)]


SALES_DECK = [
    {"title": "HX-220 sales training 2025",
     "bullets": ["Compact logger, 4 channels, Wi-Fi + Bluetooth LE, LTE-M in the HX-220L",
                 "Launched 3 February 2025", "Owner: Product Marketing (Clara Jansen)"],
     "notes": "Welcome everyone. This deck is the reference for the spring sales campaign; "
              "questions go to Clara Jansen in Product Marketing."},
    {"title": "Who buys the HX-220",
     "bullets": ["Pharmacy and hospital cold rooms with few measuring points",
                 "Museums and archives: humidity in display cases",
                 "Food retail: one logger per freezer, no wiring"],
     "notes": "Do not offer the HX-220 for production lines with digital inputs: "
              "it has none, the HX-200 is the right logger there."},
    {"title": "HX-220 or HX-200",
     "table": [["", "HX-220", "HX-200"], ["Channels", "4 analog", "8 analog + 2 digital"],
               ["Display", "none (LED + mobile app)", "yes"], ["Battery", "PX-7716", "PX-7714"],
               ["Firmware line", "1.x", "4.x"]]},
    {"title": "Introductory offer",
     "bullets": ["15 % off the HX-220 for existing HX-200 customers",
                 "Orders placed until 30 April 2025, up to 50 loggers per customer",
                 "Quote code HX220-SWITCH in SAP"],
     "notes": "The discount is not combined with distributor discounts. "
              "Larger projects than 50 loggers go through the key account team."},
    {"title": "Battery life",
     "bullets": ["Measured at 20 degC with Wi-Fi upload every hour"],
     "notes": "At a 15 minute measuring interval the battery lasts about 18 months; at 1 minute about "
              "4 months. Cold rooms below minus 20 degC shorten this by a third."},
    {"title": "Demo kits",
     "bullets": ["Demo kit DK-220: 2 loggers, 2 TS-40 probes, a tablet with the Halden app",
                 "4 kits per region, booked in the Marketing calendar for at most 2 weeks"],
     "notes": "Return the kit charged; missing probes are charged to your cost centre."},
]

PRICE_WORKBOOK = {
    "Prices": [
        ["Installation and training services 2025"],
        ["Service", "Unit", "EUR", "USD", "JPY", "Notes"],
        ["On-site installation, up to 10 loggers", "per visit", 890, 960, 142000, "travel billed separately"],
        ["On-site installation, each further logger", "per logger", 45, 49, 7200, ""],
        ["Remote commissioning (video call)", "per session of 2 h", 240, 260, 38000, "booked by support"],
        ["Halden Link basics training", "per participant", 390, 420, 62000, "1 day, Hamburg or Boston"],
        ["Halden Cloud administrator training", "per participant", 290, 310, 46000, "online, half day"],
        ["GxP validation package (IQ/OQ documents)", "per site", 2900, 3150, 462000, "for pharma customers"],
        [],
        ["Prices are net list prices valid from 1 March 2025. Approved by Finance (Sabine Krueger)."],
    ],
    "Day rates": [
        ["Region", "Engineer day rate EUR", "Travel flat rate EUR", "Weekend surcharge"],
        ["Germany", 1150, 180, "50 %"],
        ["Rest of EU", 1250, 420, "50 %"],
        ["United States", 1300, 450, "50 %"],
        ["Japan", 1250, 380, "35 %"],
    ],
}

GARAGE_MAIL = {
    "subject": "Underground garage closed 17-21 March (floor sealing)",
    "sender": "Birte Claussen <office@halden-instruments.com>",
    "to": "all-hamburg@halden-instruments.com",
    "date": "Tue, 04 Mar 2025 09:12:00 +0100",
    "body": "Dear colleagues,\n\n"
            "the underground garage at Lagerhausstrasse 9 gets a new floor sealing. It is closed from "
            "Monday 17 March, 06:00, until Friday 21 March, 18:00. Cars still in the garage on Monday "
            "morning are towed to the Ueberseequartier garage at the owner's cost, so please leave it empty "
            "from Sunday evening.\n\n"
            "During these five days Halden pays the public Ueberseequartier garage: claim up to 28 EUR per "
            "day in ExpenseFlow, category 'Parking - garage closure', with the receipt. SpaceBook parking "
            "bookings for that week are cancelled automatically.\n\n"
            "Where to charge an electric car and park a motorbike meanwhile is in the attached sheet.\n\n"
            "Thank you for your patience,\nBirte\nOffice management Hamburg, ext. 2210",
    "attachment": ("parking-during-garage-works.pdf", [
        ("Parking during the garage works, 17 to 21 March 2025", [
            "Electric cars: the four public chargers at Am Kaiserkai 10 accept the Halden charge card. Charging "
            "there is paid by Halden during the closure; the card is picked up at reception against signature.",
            "Motorbikes park in the courtyard next to the bike racks, marked with yellow tape.",
            "Visitors: reception books visitor places in the Ueberseequartier garage; the host pays with the "
            "team's cost centre.",
            "Accessible parking: the two accessible spaces are moved to the forecourt loading zone, "
            "to be reserved with reception one day ahead.",
        ]),
    ]),
}

MAINTENANCE_MAIL = {
    "subject": "Decision: Halden Cloud maintenance windows from 1 March 2025",
    "sender": "Lukas Petersen <lukas.petersen@halden-instruments.com>",
    "to": "engineering@halden-instruments.com, support@halden-instruments.com",
    "date": "Wed, 12 Feb 2025 17:40:00 +0100",
    "paragraphs": [
        "Hi all,",
        "after the review with Cloud Operations and Customer Support we have decided how Halden Cloud "
        "maintenance works from 1 March 2025:",
        "One weekly window for all regions (EU, US, JP): Saturday 06:00 to 08:00 UTC. Most weeks it stays unused.",
        "Every window that will be used is announced on the status page at least five days ahead; "
        "support sends the notice to Enterprise customers the same day.",
        "Change freeze from 20 December to 6 January: no maintenance and no releases, security fixes excepted "
        "with my approval.",
        "Emergency maintenance outside the window needs the on-call incident commander's decision and a "
        "post-mortem within 5 working days.",
        "Lukas",
    ],
}

HOTLINE_MAIL = {
    "subject": "Americas support hotline on US public holidays in 2025",
    "sender": "Ben Okafor <ben.okafor@halden-instruments.com>",
    "to": "support-americas@halden-instruments.com",
    "date": "Wed, 08 Jan 2025 11:05:00 -0500",
    "body": "Team,\n\n"
            "for 2025 the Americas support hotline (+1 617 555 0142) keeps reduced hours on US public "
            "holidays: 10:00 to 14:00 Eastern time, answered by the engineer on the holiday rota. "
            "This covers Memorial Day, Independence Day, Labor Day, Thanksgiving and Christmas Day.\n\n"
            "Enterprise customers keep 24/7 escalation on holidays through option 9 of the hotline, which "
            "pages the on-call engineer.\n\n"
            "The holiday rota is in the Support Americas channel; swap shifts there and tell me.\n\nBen",
}


def build(out: Path = OUT) -> list[Path]:
    for folder in ("facilities", "sales", "mail", "offices/tokyo"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    written = [
        docgen.make_scan(out / "facilities" / "landlord-letter-facade-works-2025-scan.pdf", LANDLORD_LETTER, seed=1),
        docgen.make_scan(out / "offices" / "tokyo" / "building-power-outage-notice-2025-ja-scan.pdf",
                         TOKYO_OUTAGE_NOTICE, japanese=True, seed=2),
        docgen.make_pptx(out / "sales" / "hx220-sales-training-2025.pptx", SALES_DECK),
        docgen.make_xlsx(out / "sales" / "installation-and-training-prices-2025.xlsx", PRICE_WORKBOOK),
    ]
    name, pages = GARAGE_MAIL["attachment"]
    garage = docgen.make_email(GARAGE_MAIL["subject"], GARAGE_MAIL["sender"], GARAGE_MAIL["to"],
                               GARAGE_MAIL["date"], GARAGE_MAIL["body"], attachments=[(name, docgen.pdf_bytes(pages))],
                               message_id="<garage-2025-03@halden-instruments.example>")
    m = MAINTENANCE_MAIL
    html = "<html><body>" + "".join(f"<p>{p}</p>" for p in m["paragraphs"]) + "</body></html>"
    maintenance = docgen.make_email(m["subject"], m["sender"], m["to"], m["date"], "\n\n".join(m["paragraphs"]),
                                    html=html, message_id="<maintenance-2025-02@halden-instruments.example>")
    h = HOTLINE_MAIL
    hotline = docgen.make_email(h["subject"], h["sender"], h["to"], h["date"], h["body"],
                                message_id="<hotline-2025-01@halden-instruments.example>")
    mail = out / "mail"
    written += [docgen.write_eml(mail / "2025-03-04-hamburg-garage-floor-sealing.eml", garage),
                docgen.write_eml(mail / "2025-02-12-halden-cloud-maintenance-windows.eml", maintenance),
                docgen.write_msg(mail / "2025-01-08-us-holiday-hotline-hours.msg", hotline)]
    return written + build_japanese(out)


def source_text(pages: list[tuple[str, list[str]]]) -> str:
    """What a scan shows, for measuring OCR against it."""
    return "\n".join(line for heading, paragraphs in pages for line in [heading, *paragraphs])


def main() -> int:
    for path in build():
        print(f"{path.relative_to(ROOT)}  ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
