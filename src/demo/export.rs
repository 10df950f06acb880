pub fn sim_event_to_json_v1() {} pub fn site_agents_csv() {} pub fn site_roster_csv() {}
