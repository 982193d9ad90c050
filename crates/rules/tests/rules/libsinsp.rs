//! Operator semantics checked against the cases of libsinsp's own filter unit tests
//! (`filter_op_net_compare`, `filter_op_numeric_compare`, `filter_op_pmatch`), restated here
//! as our events and conditions: what Falco answers is what we must answer.

use crate::support::check_fires;

/// A TCP connect from 172.40.111.222:54321 to 142.251.111.147:443.
const CONNECT_V4: &str = r#"{"kind":"connect","process":{"name":"curl"},
  "payload":{"type":"network","fd":{"num":9,"kind":"ipv4","socket":{"protocol":"tcp",
    "local_addr":"172.40.111.222","local_port":54321,
    "remote_addr":"142.251.111.147","remote_port":443,"connected":true}}}}"#;

/// A UDP connect from [::1]:54321 to [2001:4860:4860::8888]:443.
const CONNECT_V6: &str = r#"{"kind":"connect","process":{"name":"dig"},
  "payload":{"type":"network","fd":{"num":9,"kind":"ipv6","socket":{"protocol":"udp",
    "local_addr":"::1","local_port":54321,
    "remote_addr":"2001:4860:4860::8888","remote_port":443,"connected":true}}}}"#;

/// An open of /tmp/the_file that failed (-1).
const FAILED_OPEN: &str = r#"{"kind":"open","ret":-1,"process":{"name":"cat"},
  "payload":{"type":"open","fd":{"num":-1,"kind":"file","name":"/tmp/the_file"},"flags":0,"mode":438}}"#;

/// An open of /opt/dir/subdir/file.txt.
const OPEN: &str = r#"{"kind":"open","ret":1,"process":{"name":"cat"},
  "payload":{"type":"open","fd":{"num":1,"kind":"file","name":"/opt/dir/subdir/file.txt"},"flags":0,"mode":0}}"#;

#[test]
fn addresses_and_networks_compare_like_libsinsp() {
    check_fires(&[
        ("fd.ip == 142.251.111.147", CONNECT_V4, true),
        ("fd.sip == 142.251.111.147", CONNECT_V4, true),
        ("fd.cip == 172.40.111.222", CONNECT_V4, true),
        ("fd.ip != 142.251.111.147", CONNECT_V4, false),
        // An IPv6 literal never equals an IPv4 address, quoted or not.
        ("fd.sip != 0:0:0:0:0:0:0:1", CONNECT_V4, true),
        ("fd.sip == '0:0:0:0:0:0:0:1'", CONNECT_V4, false),
        // fd.net: either end of the connection in the network; the prefix length counts.
        ("fd.net == 142.0.0.0/4", CONNECT_V4, true),
        ("fd.net == 142.251.0.0/8", CONNECT_V4, true),
        ("fd.net == 142.251.111.0/16", CONNECT_V4, true),
        ("fd.net != 10.0.0.0/8", CONNECT_V4, true),
        ("fd.net != 2001:db8:abcd:0012::0/64", CONNECT_V4, true),
        ("fd.net == 10.0.0.0/8", CONNECT_V4, false),
        ("fd.net == 2001:db8:abcd:0012::0/64", CONNECT_V4, false),
        ("fd.ip == 2001:4860:4860::8888", CONNECT_V6, true),
        ("fd.sip == 2001:4860:4860::8888", CONNECT_V6, true),
        ("fd.cip == ::1", CONNECT_V6, true),
        ("fd.ip != 2001:4860:4860::8888", CONNECT_V6, false),
        ("fd.sip != 127.0.0.1", CONNECT_V6, true),
        ("fd.sip == '127.0.0.1'", CONNECT_V6, false),
        ("fd.net == 2001::0/16", CONNECT_V6, true),
        ("fd.net == 2001:4860::0/32", CONNECT_V6, true),
        // Host bits set in the network are masked off.
        ("fd.net == 2001:4860:4860::8888/48", CONNECT_V6, true),
        ("fd.net != 10::0/16", CONNECT_V6, true),
        ("fd.net != 10.0.0.0/8", CONNECT_V6, true),
        ("fd.net == 10.0.0.0/8", CONNECT_V6, false),
        ("fd.net == 2001:db8:abcd:0012::0/64", CONNECT_V6, false),
        // Networks in lists, as the Falco rules write rfc_1918_addresses.
        (
            "fd.snet in (\"10.0.0.0/8\", \"142.251.0.0/16\")",
            CONNECT_V4,
            true,
        ),
        (
            "fd.snet in (\"10.0.0.0/8\", \"192.168.0.0/16\")",
            CONNECT_V4,
            false,
        ),
        ("fd.cnet in (\"172.16.0.0/12\")", CONNECT_V4, false),
        ("fd.cnet in (\"172.32.0.0/11\")", CONNECT_V4, true),
    ]);
}

#[test]
fn signed_numbers_compare_like_libsinsp() {
    check_fires(&[
        ("fd.num >= 0", FAILED_OPEN, false),
        ("fd.num > 0", FAILED_OPEN, false),
        ("fd.num < 0", FAILED_OPEN, true),
        ("fd.num > 4294967295", FAILED_OPEN, false),
        ("fd.num < -1", FAILED_OPEN, false),
        ("fd.num > -65535", FAILED_OPEN, true),
        ("evt.rawres < 0", FAILED_OPEN, true),
        ("evt.rawres > 4294967295", FAILED_OPEN, false),
        ("evt.rawres > -65535", FAILED_OPEN, true),
        ("evt.rawres >= 0", FAILED_OPEN, false),
    ]);
}

#[test]
fn pmatch_takes_path_prefixes_and_globs_like_libsinsp() {
    check_fires(&[
        ("fd.name pmatch (/opt/dir)", OPEN, true),
        ("fd.name pmatch (/opt/dir/subdir)", OPEN, true),
        ("fd.name pmatch (/opt/dir2)", OPEN, false),
        ("fd.name pmatch (/opt/dir, /opt/dir2)", OPEN, true),
        ("fd.name pmatch (/opt/dir3, /opt/dir2)", OPEN, false),
        ("fd.name pmatch (/opt/*)", OPEN, true),
        ("fd.name pmatch (/opt/*/subdir)", OPEN, true),
        ("fd.name pmatch (/opt/di?/subdir)", OPEN, true),
        ("fd.name pmatch (/opt/dii?/subdir)", OPEN, false),
        ("fd.name pmatch (/opt/di[r]/subdir)", OPEN, true),
        ("fd.name pmatch (/opt/di[!r]/subdir)", OPEN, false),
        ("fd.name pmatch (/opt/di/subdir)", OPEN, false),
        ("fd.name pmatch (/opt/di[t]/subdir)", OPEN, false),
        ("fd.name pmatch (/opt/*/subdir2)", OPEN, false),
        ("fd.name pmatch (/opt/*/*)", OPEN, true),
        ("fd.name pmatch (/opt/*/*/subsubdir)", OPEN, false),
    ]);
}
