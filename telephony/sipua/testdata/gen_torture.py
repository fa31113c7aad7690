# Regenerates testdata/torture (python3 gen_torture.py): the raw SIP torture corpus of TestTortureCorpus.
# Writes the raw torture corpus. Each message is written with CRLF line ends; {CL} is replaced by the body
# length; \x escapes give the raw bytes the case is about. $ID and $TRANSPORT stay for the test to fill in.
import os
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torture")
for f in os.listdir(out):
    os.remove(os.path.join(out, f))

SDP = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 40000 RTP/AVP 8 0 101
a=rtpmap:101 telephone-event/8000
"""

def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")

def w(name, head, body="", raw_body=False, cl=True):
    b = body if raw_body else crlf(body)
    h = crlf(head)
    if cl:
        h = h.replace("{CL}", str(len(b.encode("latin-1"))))
    data = (h + "\r\n" + b).encode("latin-1")
    open(os.path.join(out, name + ".sip"), "wb").write(data)

def inv(extra="", ct="application/sdp", body=SDP, method="INVITE", cseq="1 INVITE", mf="70", ruri="sip:12345@127.0.0.1",
        to="<sip:12345@127.0.0.1>", contact="<sip:caller@127.0.0.1:5999>"):
    h = f"""{method} {ruri} SIP/2.0
Via: SIP/2.0/$TRANSPORT 127.0.0.1:5999;rport;branch=z9hG4bK-$ID
Max-Forwards: {mf}
From: "Caller" <sip:13812345678@127.0.0.1>;tag=f-$ID
To: {to}
Call-ID: $ID@torture.test
CSeq: {cseq}
Contact: {contact}
{extra}Content-Type: {ct}
Content-Length: {{CL}}
"""
    return h, body

# ---------------- RFC 4475 3.1.1: valid messages (accepted: the INVITE reaches the call handler → 486) -----------
# 3.1.1.1 wsinv: a short tortuous INVITE (line folding, LWS around separators, case, unknown headers). It carries a
# To tag, so it is a re-INVITE of a dialog we do not have: 481 (RFC 3261 12.2.2), after parsing every oddity.
w("481-wsinv", """INVITE sip:12345@127.0.0.1;user=phone SIP/2.0
TO :
 sip:12345@127.0.0.1 ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: $ID@torture.test
Content-Length   : {CL}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /$TRANSPORT
    127.0.0.1:5999;rport;branch=z9hG4bK-$ID
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33
""", SDP)
# 3.1.1.3 esc01: valid %-escaping in URIs
w("486-esc01", *inv(ruri="sip:sips%3A12345%40example.com@127.0.0.1", to="sip:sips%3Auser%40example.com@example.net",
                    contact="<sip:cal%6Cer@127.0.0.1:5999>"))
# 3.1.1.6 lwsdisp: no LWS between display name and <
w("486-lwsdisp", *inv(to='caller<sip:12345@127.0.0.1>'))
# 3.1.1.7 longreq (shortened so the 486 still fits sipgo's 1300-byte UDP limit, B6): long values and many params
w("486-longreq", *inv(extra="X-Long-Header: " + "x" * 300 + "\nSubject: " + "s" * 120 + "\n",
                      contact="<sip:" + "amazinglylongcallername" * 3 + "@127.0.0.1:5999;unknownparam" + "=v" * 10 + ">"))
# 3.1.1.8 dblreq: extra octets after the body in one UDP datagram are ignored (UDP only: on TCP they are a stream)
h, b = inv()
w("486-dblreq.udp", h.replace("{CL}", str(len(crlf(b)))), b + "REGISTER sip:example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\n\r\n", cl=False)
# 3.1.1.9 semiuri: semicolons in the user part
w("486-semiuri", *inv(ruri="sip:12345;par=u%40example.net@127.0.0.1", to="<sip:12345;par=u%40example.net@127.0.0.1>"))
# 3.1.1.10 transports: assorted transport tokens in Via values below ours
w("486-transports", *inv(extra="Via: SIP/2.0/SCTP t3.example.com;branch=z9hG4bKsctp\nVia: SIP/2.0/TLS t4.example.com;branch=z9hG4bKtls\nVia: SIP/2.0/UNKNOWN t5.example.com;branch=z9hG4bKunk\n"))
# 3.5.1 inv2543: RFC 2543 syntax (no branch magic cookie, no From tag, no Max-Forwards). sipgo keys server
# transactions on the From tag and answers 400 itself (B11): RFC 2543 peers are not supported.
w("400-inv2543", """INVITE sip:12345@127.0.0.1 SIP/2.0
Via: SIP/2.0/$TRANSPORT 127.0.0.1:5999
From: <sip:+13035551111@127.0.0.1;user=phone>
To: sip:12345@127.0.0.1;user=phone
Call-ID: $ID@torture.test
CSeq: 1 INVITE
Contact: <sip:caller@127.0.0.1:5999>
Content-Type: application/sdp
Content-Length: {CL}
""", SDP)
# 3.1.1.11 mpart01: a valid multipart body; we only take a bare SDP offer → 415 with Accept: application/sdp
mp = "--boundary42\nContent-Type: application/sdp\n\n" + SDP + "\n--boundary42\nContent-Type: text/plain\n\nhello\n--boundary42--\n"
w("415-mpart01", *inv(ct="multipart/mixed;boundary=boundary42", body=mp))
# 3.1.1.2 intmeth: a method made of every token character → 405 (valid, not ours), with Allow
meth = "!interesting-Method0123456789_*+`.%indeed'~"
w("405-intmeth", *inv(method=meth, cseq="139122385 " + meth, body="", ct="text/plain"))
# 3.1.1.5 esc02: %-escapes in a method are not escapes: RE%47IST%45R is not REGISTER → 405
w("405-esc02", *inv(method="RE%47IST%45R", cseq="1 RE%47IST%45R", body="", ct="text/plain"))
# 3.1.1.4 escnull: escaped NULs in URIs are valid (REGISTER → the registrar's challenge)
w("401-escnull", """REGISTER sip:127.0.0.1 SIP/2.0
To: sip:null-%00-null@127.0.0.1
From: sip:null-%00-null@127.0.0.1;tag=f-$ID
Call-ID: $ID@torture.test
CSeq: 1 REGISTER
Via: SIP/2.0/$TRANSPORT 127.0.0.1:5999;rport;branch=z9hG4bK-$ID
Max-Forwards: 70
Contact: <sip:%00@127.0.0.1:5999>
Contact: <sip:%00%00@127.0.0.1:5999>
L: 0
""")
# 3.2.11 zeromf: OPTIONS with Max-Forwards 0 is answered by the element reached (RFC 3261 16.3)
w("200-zeromf-options", *inv(method="OPTIONS", cseq="1 OPTIONS", mf="0", body="", ct="text/plain"))
w("200-options", *inv(method="OPTIONS", cseq="7 OPTIONS", body="", ct="text/plain"))

# ---------------- RFC 5118: IPv6 -------------------------------------------------------------------------------
w("486-ipv6-good", *inv(ruri="sip:12345@[2001:db8::10]", to="<sip:12345@[2001:db8::10]>", contact="<sip:caller@[2001:db8::9:1]:5999>"))
w("486-ipv6-port-ambiguous", *inv(ruri="sip:12345@[2001:db8::10:5070]", to="<sip:12345@[2001:db8::10:5070]>"))
w("486-ipv6-port-unambiguous", *inv(ruri="sip:12345@[2001:db8::10]:5070", to="<sip:12345@[2001:db8::10]:5070>"))
w("486-ipv6-via-received", *inv(extra="Via: SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];branch=z9hG4bKas3\n"))
w("486-ipv4-mapped", *inv(ruri="sip:12345@[::ffff:127.0.0.1]", contact="<sip:caller@[::ffff:127.0.0.1]:5999>"))
w("486-ipv6-correct-abnf", *inv(ruri="sip:12345@[2001:db8::192.0.2.1]", to="<sip:12345@[2001:db8::192.0.2.1]>"))
w("486-ipv6-in-sdp", *inv(body=SDP.replace("IN IP4 127.0.0.1", "IN IP6 2001:db8::10")))
w("486-ipv6-mult-ip-in-header", *inv(extra="Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKjhja8781hjuaij65144\n"))
w("486-ipv6-mult-ip-in-sdp", *inv(body=SDP.replace("m=audio", "a=sendrecv\nm=audio 40002 RTP/AVP 8\nc=IN IP6 2001:db8::10\nm=audio")))
# 4.2 ipv6-bad: an IPv6 reference without brackets
w("400-ipv6-bad", *inv(ruri="sip:12345@2001:db8::10", to="<sip:12345@[2001:db8::10]>"))

# ---------------- RFC 4475 3.1.2 and 3.2: invalid messages --------------------------------------------------------
# 3.1.2.17 mismatch01 / the issue: CSeq method differs from the request method
w("400-mismatch01", *inv(method="OPTIONS", cseq="1 INVITE", body="", ct="text/plain"))
w("400-mismatch-invite", *inv(cseq="1 ACK"))
# 3.1.2.18 mismatch02: unknown method, CSeq method differs
w("400-mismatch02", *inv(method="NEWMETHOD", cseq="3 INVITE", body="", ct="text/plain"))
# 3.1.2.16 badvers
w("505-badvers", *(lambda h, b: (h.replace("SIP/2.0\n", "SIP/7.0\n", 1), b))(*inv(method="OPTIONS", cseq="1 OPTIONS", body="", ct="text/plain")))
# 3.2.2 unksm: unknown Request-URI scheme
w("416-unksm", *inv(method="OPTIONS", cseq="1 OPTIONS", ruri="nobodyknowsthisscheme:totallyopaquecontent", body="", ct="text/plain"))
# 3.1.2.7 ltgtruri: Request-URI in <>
w("400-ltgtruri", *inv(ruri="<sip:12345@127.0.0.1>"))
# 3.1.2.11 escruri: URI headers in the Request-URI
w("400-escruri", *inv(ruri="sip:12345@127.0.0.1?Route=%3Csip:example.com%3E"))
# 3.2.4 bext01: Require with an unknown extension → 420 + Unsupported
w("420-bext01", *inv(extra="Require: nothingpossible\n"))
# 3.2.1 insuf: missing Call-ID (and no From)
w("400-insuf", """INVITE sip:12345@127.0.0.1 SIP/2.0
Via: SIP/2.0/$TRANSPORT 127.0.0.1:5999;rport;branch=z9hG4bK-$ID
Max-Forwards: 70
To: <sip:12345@127.0.0.1>
CSeq: 1 INVITE
Contact: <sip:caller@127.0.0.1:5999>
Content-Type: application/sdp
Content-Length: {CL}
""", SDP)
# 3.2.8 multi01: several values in single-value headers
w("400-multi01", *inv(extra="To: <sip:other@127.0.0.1>\nCall-ID: second-$ID@torture.test\n"))
# 3.2.9 mcl01: several Content-Length values
w("400-mcl01", *inv(extra="Content-Length: 3\n"))
# 3.1.2.4 scalar02 (part): Max-Forwards above 255
w("400-scalar-maxfwd", *inv(mf="300"))
# 3.1.2.2 clerr: Content-Length larger than the message (UDP; on TCP it waits for the rest until the read deadline)
h, b = inv()
w("400-clerr.udp", h.replace("{CL}", "9999"), b, cl=False)
# 3.2.6 invut: an INVITE with a body type we do not understand → 415
w("415-invut", *inv(ct="application/unknownformat", body="<audio> <pcmu port=\"443\"/> </audio>\n"))
# The cases: Max-Forwards 0 on an INVITE; NUL and bare CR or LF inside header values
w("483-zeromf-invite", *inv(mf="0"))
w("400-nul-in-header", *inv(extra="Subject: hello\x00world\n"))
h, b = inv()
w("400-nul-in-from", h.replace('"Caller"', '"Cal\x00ler"'), b)

def wraw(name, head, body):
    # \x01 marks a bare LF and \x02 a bare CR, put in after the CRLF conversion
    b = crlf(body)
    h = crlf(head).replace("{CL}", str(len(b))).replace("\x01", "\n").replace("\x02", "\r")
    open(os.path.join(out, name + ".sip"), "wb").write((h + "\r\n" + b).encode("latin-1"))

wraw("400-bare-lf-in-header", *inv(extra="Subject: first\x01BYE-Injected: yes\n"))
wraw("400-bare-cr-in-header", *inv(extra="Subject: first\x02BYE-Injected: yes\n"))
wraw("400-bare-lf-in-callid", *(lambda h, b: (h.replace("Call-ID: $ID@torture.test", "Call-ID: $ID@torture\x01.test"), b))(*inv()))

# ---------------- SDP offers we cannot use → 488 before any media is set up ---------------------------------------
w("488-sdp-no-audio", *inv(body=SDP.replace("m=audio 40000 RTP/AVP 8 0 101", "m=video 40000 RTP/AVP 31")))
w("488-sdp-port-out-of-range", *inv(body=SDP.replace("m=audio 40000", "m=audio 70000")))
w("488-sdp-port-negative", *inv(body=SDP.replace("m=audio 40000", "m=audio -1")))
w("488-sdp-port-zero", *inv(body=SDP.replace("m=audio 40000", "m=audio 0")))
w("488-sdp-no-common-codec", *inv(body=SDP.replace("RTP/AVP 8 0 101", "RTP/AVP 18").replace("a=rtpmap:101 telephone-event/8000\n", "")))
w("488-sdp-no-connection", *inv(body=SDP.replace("c=IN IP4 127.0.0.1\n", "")))
w("488-sdp-savp-only", *inv(body=SDP.replace("RTP/AVP", "RTP/SAVP")))
w("488-sdp-garbage", *inv(body="this is not a session description\n"))
w("486-sdp-rtpmap-dynamic-pcma", *inv(body=SDP.replace("RTP/AVP 8 0 101", "RTP/AVP 96 101").replace("a=rtpmap:101", "a=rtpmap:96 PCMA/8000\na=rtpmap:101")))
