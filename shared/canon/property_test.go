package canon

import (
	"math/rand/v2"
	"net/url"
	"strconv"
	"testing"
)

// content is one piece of content and a way to spell a link to it.
type content struct {
	key   string                    // names the content: equal keys, same content
	spell func(r *rand.Rand) string // one real-world link to it, chosen at random
}

const (
	lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)

func randString(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func randDigits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	b[0] = byte('1' + r.IntN(9))
	for i := 1; i < n; i++ {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

// randCase upper-cases some letters of s: for names that are case-insensitive.
func randCase(r *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' && r.IntN(3) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func pick(r *rand.Rand, forms ...string) string { return forms[r.IntN(len(forms))] }

// genContent returns a random piece of content on one of the platforms.
func genContent(r *rand.Rand) content {
	handle := func(r *rand.Rand) string { return randString(r, lowerAlnum, 3+r.IntN(8)) }
	switch r.IntN(9) {
	case 0: // X post: the handle does not matter, the id does
		id := randDigits(r, 19)
		return content{"x:" + id, func(r *rand.Rand) string {
			h := randCase(r, handle(r))
			return pick(r,
				"https://twitter.com/"+h+"/status/"+id,
				"https://x.com/"+h+"/status/"+id+"?s=20&t=Ab",
				"https://mobile.twitter.com/"+h+"/status/"+id+"/photo/1",
				"https://twitter.com/#!/"+h+"/status/"+id,
				"https://twitter.com/i/web/status/"+id,
			)
		}}
	case 1: // TikTok video
		id := randDigits(r, 19)
		return content{"tiktok:" + id, func(r *rand.Rand) string {
			h := randCase(r, handle(r))
			return pick(r,
				"https://www.tiktok.com/@"+h+"/video/"+id+"?is_from_webapp=1&_t=8k&_r=1",
				"https://m.tiktok.com/v/"+id+".html",
				"https://www.tiktok.com/%40"+h+"/video/"+id+"/",
				"https://www.tiktok.com/embed/v2/"+id,
			)
		}}
	case 2: // Telegram channel: t.me and Telegram Web spellings
		ch := handle(r) + "_" + handle(r)
		return content{"tg:" + ch, func(r *rand.Rand) string {
			c := randCase(r, ch)
			return pick(r,
				"https://t.me/"+c,
				"https://telegram.me/"+c+"/",
				"https://web.telegram.org/k/#@"+c,
				"https://web.telegram.org/a/#@"+c,
				"https://web.telegram.org/#/im?p=@"+c,
				"https://web.telegram.org/k/#?tgaddr="+url.QueryEscape("tg://resolve?domain="+c),
			)
		}}
	case 3: // Telegram invite: the hash is case-sensitive
		hash := randString(r, idAlphabet[:62], 16)
		return content{"tginvite:" + hash, func(r *rand.Rand) string {
			return pick(r,
				"https://t.me/+"+hash,
				"https://t.me/%2B"+hash,
				"https://t.me/joinchat/"+hash,
				"https://web.telegram.org/k/#?tgaddr="+url.QueryEscape("tg://join?invite="+hash),
			)
		}}
	case 4: // YouTube video: the id is case-sensitive
		id := randString(r, idAlphabet, 11)
		return content{"yt:" + id, func(r *rand.Rand) string {
			return pick(r,
				"https://www.youtube.com/watch?v="+id+"&feature=share",
				"https://youtu.be/"+id+"?si=x",
				"https://youtube.com/shorts/"+id,
				"https://www.youtube-nocookie.com/embed/"+id,
				"https://m.youtube.com/watch?list=PL1&v="+id,
			)
		}}
	case 5: // Signal group: the fragment is the group
		key := randString(r, idAlphabet[:62], 24)
		return content{"signal:" + key, func(r *rand.Rand) string {
			return pick(r, "https://signal.group/#"+key, "http://signal.group#"+key)
		}}
	case 6: // a single-page app routing by fragment
		n := strconv.Itoa(r.IntN(100000))
		return content{"spa:" + n, func(r *rand.Rand) string {
			return pick(r, "https://app.example.com/#/item/"+n, "https://www.app.example.com/?utm_source=x#/item/"+n)
		}}
	case 7: // repeated query keys: the order of values is part of the content
		a, b := strconv.Itoa(r.IntN(5)), strconv.Itoa(r.IntN(5))
		return content{"repeat:" + a + "," + b, func(r *rand.Rand) string {
			return pick(r, "https://shop.example.com/item?id="+a+"&id="+b, "https://shop.example.com/item?id="+a+"&fbclid=x&id="+b)
		}}
	default: // WhatsApp number
		d := randDigits(r, 11)
		return content{"wa:" + d, func(r *rand.Rand) string {
			return pick(r,
				"https://wa.me/"+d,
				"https://wa.me/+"+d+"?text=hi",
				"https://api.whatsapp.com/send?phone=%2B"+d+"&text=hi",
				"https://web.whatsapp.com/send?phone="+d,
			)
		}}
	}
}

// wrap puts a link behind a random redirect wrapper, sometimes.
func wrap(r *rand.Rand, s string) string {
	q := url.QueryEscape(s)
	switch r.IntN(6) {
	case 0:
		return "https://l.facebook.com/l.php?u=" + q + "&h=AT0"
	case 1:
		return "https://www.google.com/url?q=" + q + "&sa=D"
	case 2:
		return "https://vk.com/away.php?to=" + q
	}
	return s
}

// TestGeneratedContentNeverMergesOrSplits: for random content on each
// platform, every spelling of one piece of content reaches one case and no
// two pieces of content share a case.
func TestGeneratedContentNeverMergesOrSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	n := 3000
	if testing.Short() {
		n = 300
	}
	caseOf := map[string]string{}  // content key → case id
	keyOf := map[string]string{}   // case id → content key
	example := map[string]string{} // content key → a spelling
	for range n {
		c := genContent(r)
		for range 4 {
			in := wrap(r, c.spell(r))
			u, err := Parse(in)
			if err != nil {
				t.Fatalf("%s: Parse(%q): %v", c.key, in, err)
			}
			if id, ok := caseOf[c.key]; ok && id != u.CaseID {
				t.Fatalf("%s split: %q → %q, but %q → case %s", c.key, in, u.Canonical, example[c.key], id)
			}
			if k, ok := keyOf[u.CaseID]; ok && k != c.key {
				t.Fatalf("%s and %s merged: %q and %q → %q", c.key, k, in, example[k], u.Canonical)
			}
			caseOf[c.key], keyOf[u.CaseID], example[c.key] = u.CaseID, c.key, in
		}
	}
	if len(caseOf) < n/2 {
		t.Errorf("only %d distinct pieces of content", len(caseOf))
	}
}
