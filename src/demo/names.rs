//! Name lists for the simulated site: team names and the parts of agent
//! display names.
//!
//! The names are common Dutch first names and surnames put together at random
//! by the site generator, so no display name describes a real person. The
//! lists carry no other data.

/// Team names of a Dutch municipal contact center, in the order teams are
/// filled. A site with more teams than names reuses them with a number
/// suffix (`team-noord-2`).
pub const TEAM_NAMES: &[&str] = &[
    "team-noord",
    "team-zuid",
    "team-oost",
    "team-west",
    "team-centrum",
    "team-burgerzaken",
    "team-belastingen",
    "team-parkeren",
    "team-afval",
    "team-wmo",
    "team-jeugd",
    "team-vergunningen",
    "team-werk-en-inkomen",
    "team-openbare-ruimte",
    "team-wonen",
    "team-klantcontact",
];

/// First names common in the Netherlands across generations and backgrounds.
pub const FIRST_NAMES: &[&str] = &[
    "Anouk", "Bram", "Charlotte", "Daan", "Eline", "Fleur", "Gijs", "Hanneke", "Iris", "Jesse",
    "Joost", "Karin", "Lars", "Lotte", "Maarten", "Marieke", "Mila", "Noah", "Noor", "Pieter",
    "Ruben", "Sanne", "Sem", "Sophie", "Thijs", "Tim", "Vera", "Wouter", "Yara", "Zoë", "Anne",
    "Bas", "Demi", "Esther", "Femke", "Floor", "Hugo", "Ilse", "Jasper", "Julia", "Kees",
    "Lieke", "Luuk", "Marloes", "Niels", "Olaf", "Priya", "Rik", "Roos", "Sara", "Stijn",
    "Tess", "Wendy", "Youssef", "Fatima", "Mehmet", "Ayşe", "Kevin", "Linda", "Mohamed",
];

/// Surnames, with their particle (`van`, `de`, `van den`) as Dutch writes it
/// after a first name.
pub const LAST_NAMES: &[&str] = &[
    "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
    "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
    "van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer",
    "van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen", "van den Heuvel", "van der Veen",
    "van den Broek", "de Bruijn", "de Bruin", "van der Heijden", "Schouten", "van Beek",
    "Willems", "van Vliet", "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster",
    "van Dam", "van der Wal", "Prins", "Blom", "Huisman", "Peeters", "de Lange", "Kuipers",
    "van Wijk", "Postma", "Kaya", "Yılmaz", "El Amrani", "Bouzid", "Tjon",
];
