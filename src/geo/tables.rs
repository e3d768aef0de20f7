//! Built-in country tables: ISO 3166-1 alpha-2 code → continent and an
//! approximate centroid. Used when a database record names a country but no
//! continent (the `country_code` schema) or no coordinates (country-level
//! databases). Continents follow the GeoNames/MaxMind conventions: RU and
//! CY → EU; TR, GE, AM, AZ → AS; EG → AF; Central America and the Caribbean
//! → NA; TL → OC; the Antarctic territories (AQ BV GS HM TF) → AN. Centroids are good to about a degree, which is
//! all the `proximity` policy needs; for spread-out archipelagos they are a
//! representative point.

use crate::config::Continent::{self, Af, An, As, Eu, Na, Oc, Sa};
use crate::config::Country;

/// The continent a country belongs to, for every ISO 3166-1 alpha-2 code,
/// plus two that registry data still uses: XK (Kosovo, user-assigned) and AN
/// (Netherlands Antilles, withdrawn in 2010). `None` for unknown codes.
pub fn continent_of(c: Country) -> Option<Continent> {
    entry(c).map(|e| e.1)
}

/// (latitude, longitude) of the country's approximate centroid. `None` for
/// unknown codes.
pub fn centroid_of(c: Country) -> Option<(f64, f64)> {
    entry(c).map(|e| (e.2, e.3))
}

fn entry(c: Country) -> Option<&'static Entry> {
    COUNTRIES
        .binary_search_by(|e| e.0.cmp(&c.0))
        .ok()
        .map(|i| &COUNTRIES[i])
}

/// (code, continent, latitude, longitude), sorted by code.
type Entry = ([u8; 2], Continent, f64, f64);

#[rustfmt::skip]
pub(crate) static COUNTRIES: &[Entry] = &[
    (*b"AD", Eu, 42.5, 1.6), (*b"AE", As, 23.4, 53.8), (*b"AF", As, 33.9, 67.7),
    (*b"AG", Na, 17.1, -61.8), (*b"AI", Na, 18.2, -63.1), (*b"AL", Eu, 41.2, 20.2),
    (*b"AM", As, 40.1, 45.0), (*b"AN", Na, 12.2, -69.0), (*b"AO", Af, -11.2, 17.9), (*b"AQ", An, -75.3, -0.1),
    (*b"AR", Sa, -38.4, -63.6), (*b"AS", Oc, -14.3, -170.7), (*b"AT", Eu, 47.5, 14.6),
    (*b"AU", Oc, -25.3, 133.8), (*b"AW", Na, 12.5, -70.0), (*b"AX", Eu, 60.2, 20.0),
    (*b"AZ", As, 40.1, 47.6),
    (*b"BA", Eu, 43.9, 17.7), (*b"BB", Na, 13.2, -59.5), (*b"BD", As, 23.7, 90.4),
    (*b"BE", Eu, 50.5, 4.5), (*b"BF", Af, 12.2, -1.6), (*b"BG", Eu, 42.7, 25.5),
    (*b"BH", As, 26.0, 50.6), (*b"BI", Af, -3.4, 29.9), (*b"BJ", Af, 9.3, 2.3),
    (*b"BL", Na, 17.9, -62.8), (*b"BM", Na, 32.3, -64.8), (*b"BN", As, 4.5, 114.7),
    (*b"BO", Sa, -16.3, -63.6), (*b"BQ", Na, 12.2, -68.3), (*b"BR", Sa, -14.2, -51.9),
    (*b"BS", Na, 25.0, -77.4), (*b"BT", As, 27.5, 90.4), (*b"BV", An, -54.4, 3.4),
    (*b"BW", Af, -22.3, 24.7), (*b"BY", Eu, 53.7, 28.0), (*b"BZ", Na, 17.2, -88.5),
    (*b"CA", Na, 56.1, -106.3), (*b"CC", As, -12.2, 96.9), (*b"CD", Af, -4.0, 21.8),
    (*b"CF", Af, 6.6, 20.9), (*b"CG", Af, -0.2, 15.8), (*b"CH", Eu, 46.8, 8.2),
    (*b"CI", Af, 7.5, -5.5), (*b"CK", Oc, -21.2, -159.8), (*b"CL", Sa, -35.7, -71.5),
    (*b"CM", Af, 7.4, 12.4), (*b"CN", As, 35.9, 104.2), (*b"CO", Sa, 4.6, -74.3),
    (*b"CR", Na, 9.7, -83.8), (*b"CU", Na, 21.5, -77.8), (*b"CV", Af, 16.0, -24.0),
    (*b"CW", Na, 12.2, -69.0), (*b"CX", As, -10.4, 105.7), (*b"CY", Eu, 35.1, 33.4),
    (*b"CZ", Eu, 49.8, 15.5),
    (*b"DE", Eu, 51.2, 10.5), (*b"DJ", Af, 11.8, 42.6), (*b"DK", Eu, 56.3, 9.5),
    (*b"DM", Na, 15.4, -61.4), (*b"DO", Na, 18.7, -70.2), (*b"DZ", Af, 28.0, 1.7),
    (*b"EC", Sa, -1.8, -78.2), (*b"EE", Eu, 58.6, 25.0), (*b"EG", Af, 26.8, 30.8),
    (*b"EH", Af, 24.2, -12.9), (*b"ER", Af, 15.2, 39.8), (*b"ES", Eu, 40.5, -3.7),
    (*b"ET", Af, 9.1, 40.5),
    (*b"FI", Eu, 61.9, 25.7), (*b"FJ", Oc, -16.6, 179.4), (*b"FK", Sa, -51.8, -59.5),
    (*b"FM", Oc, 7.4, 150.6), (*b"FO", Eu, 61.9, -6.9), (*b"FR", Eu, 46.2, 2.2),
    (*b"GA", Af, -0.8, 11.6), (*b"GB", Eu, 55.4, -3.4), (*b"GD", Na, 12.3, -61.6),
    (*b"GE", As, 42.3, 43.4), (*b"GF", Sa, 3.9, -53.1), (*b"GG", Eu, 49.5, -2.6),
    (*b"GH", Af, 7.9, -1.0), (*b"GI", Eu, 36.1, -5.3), (*b"GL", Na, 71.7, -42.6),
    (*b"GM", Af, 13.4, -15.3), (*b"GN", Af, 9.9, -9.7), (*b"GP", Na, 16.3, -61.6),
    (*b"GQ", Af, 1.7, 10.3), (*b"GR", Eu, 39.1, 21.8), (*b"GS", An, -54.4, -36.6),
    (*b"GT", Na, 15.8, -90.2), (*b"GU", Oc, 13.4, 144.8), (*b"GW", Af, 11.8, -15.2),
    (*b"GY", Sa, 4.9, -58.9),
    (*b"HK", As, 22.4, 114.1), (*b"HM", An, -53.1, 73.5), (*b"HN", Na, 15.2, -86.2),
    (*b"HR", Eu, 45.1, 15.2), (*b"HT", Na, 19.0, -72.3), (*b"HU", Eu, 47.2, 19.5),
    (*b"ID", As, -0.8, 113.9), (*b"IE", Eu, 53.4, -8.2), (*b"IL", As, 31.0, 34.9),
    (*b"IM", Eu, 54.2, -4.5), (*b"IN", As, 20.6, 79.0), (*b"IO", As, -6.3, 71.9),
    (*b"IQ", As, 33.2, 43.7), (*b"IR", As, 32.4, 53.7), (*b"IS", Eu, 65.0, -19.0),
    (*b"IT", Eu, 41.9, 12.6),
    (*b"JE", Eu, 49.2, -2.1), (*b"JM", Na, 18.1, -77.3), (*b"JO", As, 30.6, 36.2),
    (*b"JP", As, 36.2, 138.3),
    (*b"KE", Af, 0.0, 37.9), (*b"KG", As, 41.2, 74.8), (*b"KH", As, 12.6, 105.0),
    (*b"KI", Oc, -3.4, -168.7), (*b"KM", Af, -11.9, 43.9), (*b"KN", Na, 17.4, -62.8),
    (*b"KP", As, 40.3, 127.5), (*b"KR", As, 35.9, 127.8), (*b"KW", As, 29.3, 47.5),
    (*b"KY", Na, 19.3, -81.3), (*b"KZ", As, 48.0, 66.9),
    (*b"LA", As, 19.9, 102.5), (*b"LB", As, 33.9, 35.9), (*b"LC", Na, 13.9, -61.0),
    (*b"LI", Eu, 47.2, 9.6), (*b"LK", As, 7.9, 80.8), (*b"LR", Af, 6.4, -9.4),
    (*b"LS", Af, -29.6, 28.2), (*b"LT", Eu, 55.2, 23.9), (*b"LU", Eu, 49.8, 6.1),
    (*b"LV", Eu, 56.9, 24.6), (*b"LY", Af, 26.3, 17.2),
    (*b"MA", Af, 31.8, -7.1), (*b"MC", Eu, 43.7, 7.4), (*b"MD", Eu, 47.4, 28.4),
    (*b"ME", Eu, 42.7, 19.4), (*b"MF", Na, 18.1, -63.1), (*b"MG", Af, -18.8, 46.9),
    (*b"MH", Oc, 7.1, 171.2), (*b"MK", Eu, 41.6, 21.7), (*b"ML", Af, 17.6, -4.0),
    (*b"MM", As, 21.9, 96.0), (*b"MN", As, 46.9, 103.8), (*b"MO", As, 22.2, 113.5),
    (*b"MP", Oc, 15.2, 145.7), (*b"MQ", Na, 14.6, -61.0), (*b"MR", Af, 21.0, -10.9),
    (*b"MS", Na, 16.7, -62.2), (*b"MT", Eu, 35.9, 14.4), (*b"MU", Af, -20.3, 57.6),
    (*b"MV", As, 3.2, 73.2), (*b"MW", Af, -13.3, 34.3), (*b"MX", Na, 23.6, -102.6),
    (*b"MY", As, 4.2, 102.0), (*b"MZ", Af, -18.7, 35.5),
    (*b"NA", Af, -23.0, 18.5), (*b"NC", Oc, -20.9, 165.6), (*b"NE", Af, 17.6, 8.1),
    (*b"NF", Oc, -29.0, 168.0), (*b"NG", Af, 9.1, 8.7), (*b"NI", Na, 12.9, -85.2),
    (*b"NL", Eu, 52.1, 5.3), (*b"NO", Eu, 60.5, 8.5), (*b"NP", As, 28.4, 84.1),
    (*b"NR", Oc, -0.5, 166.9), (*b"NU", Oc, -19.1, -169.9), (*b"NZ", Oc, -40.9, 174.9),
    (*b"OM", As, 21.5, 55.9),
    (*b"PA", Na, 8.5, -80.8), (*b"PE", Sa, -9.2, -75.0), (*b"PF", Oc, -17.7, -149.4),
    (*b"PG", Oc, -6.3, 144.0), (*b"PH", As, 12.9, 121.8), (*b"PK", As, 30.4, 69.3),
    (*b"PL", Eu, 51.9, 19.1), (*b"PM", Na, 46.9, -56.3), (*b"PN", Oc, -24.7, -127.4),
    (*b"PR", Na, 18.2, -66.6), (*b"PS", As, 31.9, 35.2), (*b"PT", Eu, 39.4, -8.2),
    (*b"PW", Oc, 7.5, 134.6), (*b"PY", Sa, -23.4, -58.4),
    (*b"QA", As, 25.4, 51.2),
    (*b"RE", Af, -21.1, 55.5), (*b"RO", Eu, 45.9, 25.0), (*b"RS", Eu, 44.0, 21.0),
    (*b"RU", Eu, 61.5, 105.3), (*b"RW", Af, -1.9, 29.9),
    (*b"SA", As, 23.9, 45.1), (*b"SB", Oc, -9.6, 160.2), (*b"SC", Af, -4.7, 55.5),
    (*b"SD", Af, 15.9, 30.2), (*b"SE", Eu, 60.1, 18.6), (*b"SG", As, 1.35, 103.8),
    (*b"SH", Af, -16.0, -5.7), (*b"SI", Eu, 46.2, 15.0), (*b"SJ", Eu, 77.6, 23.7),
    (*b"SK", Eu, 48.7, 19.7), (*b"SL", Af, 8.5, -11.8), (*b"SM", Eu, 43.9, 12.5),
    (*b"SN", Af, 14.5, -14.5), (*b"SO", Af, 5.2, 46.2), (*b"SR", Sa, 3.9, -56.0),
    (*b"SS", Af, 7.6, 30.3), (*b"ST", Af, 0.2, 6.6), (*b"SV", Na, 13.8, -88.9),
    (*b"SX", Na, 18.0, -63.1), (*b"SY", As, 34.8, 39.0), (*b"SZ", Af, -26.5, 31.5),
    (*b"TC", Na, 21.7, -71.8), (*b"TD", Af, 15.5, 18.7), (*b"TF", An, -49.3, 69.3),
    (*b"TG", Af, 8.6, 0.8), (*b"TH", As, 15.9, 101.0), (*b"TJ", As, 38.9, 71.3),
    (*b"TK", Oc, -9.2, -171.8), (*b"TL", Oc, -8.9, 125.7), (*b"TM", As, 39.0, 59.6),
    (*b"TN", Af, 33.9, 9.5), (*b"TO", Oc, -21.2, -175.2), (*b"TR", As, 39.0, 35.2),
    (*b"TT", Na, 10.7, -61.2), (*b"TV", Oc, -7.1, 177.6), (*b"TW", As, 23.7, 121.0),
    (*b"TZ", Af, -6.4, 34.9),
    (*b"UA", Eu, 48.4, 31.2), (*b"UG", Af, 1.4, 32.3), (*b"UM", Oc, 19.3, 166.6),
    (*b"US", Na, 37.1, -95.7), (*b"UY", Sa, -32.5, -55.8), (*b"UZ", As, 41.4, 64.6),
    (*b"VA", Eu, 41.9, 12.5), (*b"VC", Na, 13.0, -61.3), (*b"VE", Sa, 6.4, -66.6),
    (*b"VG", Na, 18.4, -64.6), (*b"VI", Na, 18.3, -64.9), (*b"VN", As, 14.1, 108.3),
    (*b"VU", Oc, -15.4, 167.0),
    (*b"WF", Oc, -13.8, -177.2), (*b"WS", Oc, -13.8, -172.1),
    (*b"XK", Eu, 42.6, 20.9),
    (*b"YE", As, 15.6, 48.5), (*b"YT", Af, -12.8, 45.2),
    (*b"ZA", Af, -30.6, 22.9), (*b"ZM", Af, -13.1, 27.8), (*b"ZW", Af, -19.0, 29.2),
];
