// Package canon turns a reported URL into the canonical form Flagline uses
// to merge reports into cases.
//
// The same advert is reported many times, from phones and desktops, through
// share buttons and copied address bars, with tracking parameters, mobile
// hosts and old domain names. All those spellings must collapse to one
// canonical URL, and so to one case (CaseID). Flagline never fetches a
// reported URL: everything here is string work, redirects are never followed
// and short links stay as they are.
//
// # Refused input
//
// Parse refuses, with an *Error whose Code says why: empty input
// (url_empty); control characters, C1 controls, bidi controls, zero-width
// and other invisible formatting characters (url_control_characters), checked
// before anything else; more than MaxLen characters (url_too_long); schemes
// other than http and https, including scheme-relative "//host" and
// scheme-less input (url_scheme); user names and passwords (url_credentials);
// missing or invalid hosts, hosts without a dot, localhost, .local,
// .internal, numeric IPv4 spellings and non-public IP addresses (url_host);
// anything net/url cannot parse, ports outside 1-65535, invalid UTF-8
// (url_invalid). Reports must name public content.
//
// # Canonical form
//
//   - Surrounding ASCII white space is trimmed. The scheme is always https:
//     http and https name the same content.
//   - The host is lower-cased, its trailing dot removed and internationalised
//     names converted to ASCII (Punycode). Default ports 80 and 443 are
//     dropped; other ports are kept. The fragment is dropped.
//   - Platform aliases are folded: m., mbasic., web., touch., mobile. and
//     locale sub-domains of facebook.com and fb.com become facebook.com;
//     telegram.me and telegram.dog become t.me; twitter.com and its mobile
//     hosts become x.com; m.youtube.com becomes youtube.com;
//     m.instagram.com and instagr.am become instagram.com; m.tiktok.com
//     becomes tiktok.com. A leading "www." is dropped on every host whose
//     remainder is still a registrable domain: for reporting,
//     www.example.org and example.org are the same site. Short links
//     (fb.me, fb.watch, vm.tiktok.com, vt.tiktok.com, t.co) are kept, since
//     resolving them would mean fetching; youtu.be/ID is the one exception,
//     because the video id is in the link itself.
//   - The path keeps its meaning: escapes of unreserved characters are
//     decoded (%7E and ~ are the same), other escapes use upper-case hex,
//     characters that cannot appear raw are escaped, '\' is read as '/' as
//     browsers do, "." and ".." segments are resolved, and an empty path is
//     "/". Trailing slashes are kept, except on the platforms named above
//     and their short links, where they carry no meaning and are trimmed.
//   - Platform paths: user names in the first segment of x.com, t.me,
//     instagram.com, facebook.com, tiktok.com/@… and youtube.com/@… are
//     lower-cased (they are case-insensitive there). t.me/s/CHANNEL/POST
//     (web preview) becomes t.me/channel/post. x.com/USER/status/ID/photo/N
//     (or video/N) becomes x.com/user/status/ID, and /i/web/status/ID becomes
//     /i/status/ID. youtu.be/ID, youtube-nocookie.com/embed/ID and
//     youtube.com/shorts|embed|live|v/ID become youtube.com/watch?v=ID, so a
//     Short and the same video at /watch are one case.
//     instagram.com/USER/p/CODE becomes instagram.com/p/CODE (also reel and
//     tv), /reels/CODE becomes /reel/CODE. facebook.com/story.php becomes
//     /permalink.php, /photo becomes /photo.php and /groups/G/permalink/P
//     becomes /groups/G/posts/P.
//   - Query: tracking parameters are removed (utm_*, click ids such as
//     fbclid and gclid, share ids, __cft__[…] and the like everywhere, plus
//     per-platform lists such as s and t on x.com and feature on YouTube).
//     Where the path alone names the content, the whole query is dropped:
//     x.com/USER/status/ID, instagram.com/p|reel|tv/CODE,
//     tiktok.com/@USER/video|photo/ID. On youtube.com/watch only v is kept.
//     Parameters that name content (v, id, story_fbid, fbid, …) are never
//     dropped. Keys and values are re-escaped form-style ('+' for space,
//     %2F and / the same), sorted by key then value, and duplicates removed;
//     "k=" is written "k"; an empty query leaves no '?'.
//
// Parse is idempotent: parsing a canonical URL returns it unchanged. The
// canonical form is at most MaxLen bytes.
//
// # Internationalised hosts
//
// Non-ASCII host names are converted with golang.org/x/net/idna (UTS #46
// lookup: mapping, normalisation, bidi and joiner rules, Punycode), as
// browsers do, so every spelling a browser would reach lands in one case.
// Existing xn-- labels are checked by decoding them. ASCII labels may contain
// '_' and any hyphens, which real sub-domains use.
package canon
