//! The demo's generated site must pass the same import and labour-rule
//! checks as a planner's roster.

use floorwatch::demo::{generate_site, site_agents_csv, site_roster_csv};
use floorwatch::roster::{self, LabourRules, RosterFormat};
use jiff::civil::date;
use jiff::tz::TimeZone;

#[test]
fn demo_roster_obeys_labour_rules() {
    let tz = TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam");
    let rules = LabourRules::default();
    // A normal week and the week of the spring clock change.
    for monday in [date(2026, 12, 7), date(2026, 3, 23)] {
        let site = generate_site(7, 163, monday, &tz, &rules);

        let agents = roster::parse_agents(&site_agents_csv(&site), RosterFormat::Csv)
            .expect("the demo's agent file must import");
        let activities = roster::parse_roster(&site_roster_csv(&site, &tz), RosterFormat::Csv, &tz)
            .expect("the demo's roster file must import");
        assert_eq!(agents.len(), 163);
        assert!(!activities.is_empty());

        let violations = roster::check(&agents, &activities, &tz, &rules);
        let texts: Vec<String> = violations.iter().map(|v| v.text(floorwatch::i18n::Locale::En)).collect();
        assert!(texts.is_empty(), "week of {monday}: {texts:#?}");
    }
}
