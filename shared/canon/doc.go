// Package canon turns a reported URL into the canonical form Flagline uses
// to merge reports into cases.
//
// The same advert is reported many times, from phones and desktops, through
// share buttons and copied address bars, with tracking parameters, mobile
// hosts and old domain names. All those spellings must collapse to one
// canonical URL, and so to one case (CaseID); and two different posts must
// never share one, which is the worse error. Flagline never fetches a
// reported URL: everything here is string work. Redirect wrappers whose
// target is in the link (l.facebook.com/l.php?u=…) are resolved by reading
// it; short links (t.co, vm.tiktok.com, fb.watch, …) stay as they are.
// docs/canonical-urls.md gives each rule with its reason, and
// testdata/corpus.tsv shows each on real link forms.
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
// (url_invalid); links whose content is chosen after '#' in a way Flagline
// cannot turn into the content's own link, such as Telegram Web without a
// public chat or signal.group with no group (url_fragment_route); redirect
// wrappers without one target, with a refused target, or nested more than
// MaxRedirects deep (url_redirect). Reports must name public content.
//
// # Canonical form
//
//   - Surrounding ASCII white space is trimmed. The scheme is always https:
//     http and https name the same content.
//   - The host is lower-cased, its trailing dot removed and internationalised
//     names converted to ASCII (Punycode). Default ports 80 and 443 are
//     dropped; other ports are kept.
//   - Redirect wrappers are replaced by their target (facebook.com/l.php,
//     l.facebook.com, lm.facebook.com, l.messenger.com, l.instagram.com,
//     l.threads.net ?u=; youtube.com/redirect?q=; vk.com/away.php?to=;
//     google.<tld>/url?q= or url=; *.safelinks.protection.outlook.com ?url=;
//     linkedin.com/redir/redirect, steamcommunity.com/linkfilter,
//     slack-redir.net/link ?url=; t.umblr.com/redirect?z=), and
//     api.whatsapp.com/send?phone=N by wa.me/N. A wrapper is recognised on
//     the path as the canonical form writes it (facebook.com/L.PHP is
//     l.php there), so a link and its canonical form are read alike.
//   - The fragment: on Telegram Web "#@name", "#/im?p=@name" and
//     "#?tgaddr=tg://resolve…|join…" become the t.me link; on x.com and
//     facebook.com a "#!/route" hash-bang becomes the path it names; on
//     signal.me and signal.group the fragment is the content and is kept;
//     on other hosts without platform rules a route ("#!/…", "#/…") or a
//     forum post anchor ("#p123", "#post-123", "#comment-5", "#123") is
//     kept, since it names content the path does not. Other fragments
//     (in-page anchors, timestamps) are dropped.
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
//     (or video/N), /USER/statuses/ID and /i/web/status/ID become
//     x.com/i/status/ID: a post is keyed by its id, as the handle can
//     change. tiktok.com/@USER/video|photo/ID, m.tiktok.com/v/ID.html and
//     tiktok.com/embed[/v2]/ID become tiktok.com/@/video|photo/ID, for the
//     same reason. t.me/joinchat/H becomes t.me/+H. vk.com pages opened
//     with ?w= or ?z= over a post, photo or video become that item
//     (vk.com/wall-1_2). wa.me/+44-77… becomes wa.me/4477…; snapchat.com
//     user names are lower-cased. youtu.be/ID, youtube-nocookie.com/embed/ID and
//     youtube.com/shorts|embed|live|v/ID become youtube.com/watch?v=ID, so a
//     Short and the same video at /watch are one case; embed/videoseries
//     (a playlist player) becomes /playlist and embed/live_stream stays, as
//     those words are placeholders, not video ids.
//     instagram.com/USER/p/CODE becomes instagram.com/p/CODE (also reel and
//     tv), /reels/CODE becomes /reel/CODE. facebook.com/story.php becomes
//     /permalink.php, /photo becomes /photo.php and /groups/G/permalink/P
//     becomes /groups/G/posts/P.
//   - Path escapes on platform hosts: escapes of sub-delims, ':' and '@'
//     are decoded too (t.me/%2BH is t.me/+H, tiktok.com/%40user is
//     tiktok.com/@user); on other hosts only unreserved escapes are, as
//     RFC 3986 allows (a server may read %2B and + differently).
//   - Query: tracking parameters are removed: names used only for tracking
//     (utm_*, click ids such as fbclid and gclid, __cft__[…] and the like)
//     everywhere; generic names only on the platforms where they are known
//     to track (ref and rdid on Facebook, s, t and ref_src on x.com, si and
//     feature on YouTube, _t, _r and lang on TikTok, text on wa.me, …),
//     since elsewhere they may select content.
//     Where the path alone names the content, the whole query is dropped:
//     x.com/USER/status/ID, instagram.com/p|reel|tv/CODE,
//     tiktok.com/@/video|photo/ID, and single-code short links. On
//     youtube.com/watch only v is kept.
//     Parameters that name content (v, id, story_fbid, fbid, …) are never
//     dropped. Keys and values are re-escaped form-style ('+' for space,
//     %2F and / the same) and sorted by key; the values of a repeated key
//     keep their order (a server reads the first or the last, so ?id=1&id=2
//     and ?id=2&id=1 may be different content), and only a pair repeated
//     right after itself is dropped; "k=" is written "k"; an empty query
//     leaves no '?'.
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
