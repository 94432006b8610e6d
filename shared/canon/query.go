package canon

import (
	"slices"
	"strings"
)

// trackingAll lists parameters dropped on every host: click ids and
// campaign tracking whose names no site uses for anything else. Generic
// names (ref, si, s, t, _t, _r, share_id, ...) are not here: on some site
// they select content (a branch, a page, a sort order), so they are dropped
// only on the platforms below, where they are known to track.
var trackingAll = set(
	"fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid",
	"yclid", "ttclid", "twclid", "li_fat_id", "epik", "srsltid", "rb_clickid",
	"mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp",
	"mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "wickedid",
	"_ga", "_gl", "s_kwcid", "ef_id", "_openstat",
	"igshid", "igsh", "mibextid", "__tn__",
)

// trackingOn lists further parameters dropped on one platform only.
var trackingOn = map[platform]map[string]bool{
	pfFacebook: set(
		"share_url", "sfnsn", "sfns", "extid", "fref", "hc_ref", "hc_location",
		"ref_type", "refsrc", "refid", "comment_tracking", "notif_id", "notif_t",
		"acontext", "paipv", "eav", "av", "_rdc", "_ft_", "privacy_mutation_token",
		"wtsid", "hrc", "app", "locale", "ref", "rdid", "_rdr", "sharer_id", "share_id",
	),
	pfTelegram: set("embed"),
	pfX:        set("s", "t", "src", "cxt", "lang", "ref_src", "ref_url"),
	pfYouTube: set(
		"feature", "pp", "ab_channel", "app", "persist_app", "noapp", "hl", "gl",
		"embeds_referring_euri", "embeds_euri", "embeds_referring_origin",
		"source_ve_path", "cbrd", "ucbcb", "si",
	),
	pfYouTubeShort:    set("feature", "t", "si"),
	pfYouTubeNoCookie: set("feature", "si"),
	pfYouTubeMusic:    set("feature", "si"),
	pfInstagram:       set("hl", "img_index", "ig_rid", "ref"),
	pfTikTok: set(
		"_d", "checksum", "sec_uid", "sec_user_id", "share_app_id", "share_link_id",
		"share_item_id", "share_author_id", "u_code", "preview_pb", "timestamp",
		"user_id", "social_sharing", "social_share_type", "tt_from", "source",
		"refer", "enter_from", "enter_method", "embed_source", "lang", "web_id",
		"is_copy_url", "_webapp", "_t", "_r", "is_from_webapp", "sender_device", "share_id",
	),
	pfWhatsApp: set("text", "app_absent"),
	pfSnapchat: set("share_id", "sid", "locale", "sender_web_id", "device_type", "device_id", "is_copy_url"),
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// tracking reports whether the decoded key is a tracking parameter on pf.
func tracking(pf platform, key string) bool {
	if len(key) >= 4 && strings.EqualFold(key[:4], "utm_") ||
		strings.HasPrefix(key, "__cft__") || strings.HasPrefix(key, "__xts__") {
		return true
	}
	return trackingAll[key] || trackingOn[pf][key]
}

type kv struct{ k, v string }

// canonQuery appends the canonical query parameters of raw to dst, sorted
// by key. Values of a repeated key keep their order (a server reads the
// first or the last, so ?id=1&id=2 and ?id=2&id=1 can be different
// content); only a pair repeated right after itself is dropped. extra, if
// set, is a YouTube video id taken from the path.
func canonQuery(dst []kv, raw string, pf platform, path, extra string) []kv {
	rule := queryRuleFor(pf, path)
	if rule == keepNone {
		return dst
	}
	if extra != "" {
		dst = append(dst, kv{"v", extra})
	}
	for rest := raw; rest != ""; {
		part, tail, _ := strings.Cut(rest, "&")
		rest = tail
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk := k
		if strings.ContainsAny(k, "%+") {
			dk = queryUnescape(k)
		}
		if tracking(pf, dk) {
			continue
		}
		k, v = queryEscape(k), queryEscape(v)
		if k == "" && v == "" {
			continue
		}
		dst = append(dst, kv{k, v})
	}
	if rule == keepV && slices.ContainsFunc(dst, isV) {
		// On /watch only v names the video; list, index, t, ... are context.
		dst = slices.DeleteFunc(dst, func(p kv) bool { return !isV(p) })
	}
	slices.SortStableFunc(dst, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	return slices.Compact(dst)
}

func isV(p kv) bool { return p.k == "v" }

// queryByte reports whether c stays unescaped in a canonical query key or
// value. '+' stands for a space; '&', '=', '+', ';' and '#' are escaped.
func queryByte(c byte) bool {
	if unreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '\'', '(', ')', '*', ',', '/', ':', '@', '?':
		return true
	}
	return false
}

// queryCanonical reports whether queryEscape would return s unchanged.
func queryCanonical(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+' || queryByte(c):
		case c == '%':
			d, ok := decodePct(s, i)
			if !ok || d == ' ' || queryByte(d) || s[i+1] >= 'a' || s[i+2] >= 'a' {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// queryUnescape decodes form-style: '+' is a space, invalid escapes stay.
func queryUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if d, ok := decodePct(s, i); ok {
				b.WriteByte(d)
				i += 2
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// queryEscape re-encodes a raw key or value canonically: decode as
// queryUnescape does, then escape every byte queryByte refuses.
func queryEscape(s string) string {
	if queryCanonical(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			b.WriteByte('+')
			continue
		case '%':
			if d, ok := decodePct(s, i); ok {
				c = d
				i += 2
			}
		}
		switch {
		case c == ' ':
			b.WriteByte('+')
		case queryByte(c):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}
