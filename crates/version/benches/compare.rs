//! Comparisons per second per scheme, on realistic version strings.
//!
//! Two measurements per scheme: `compare` parses both strings every time (what
//! `palisade db vercmp` does), `parsed` compares values parsed once (what a matcher does when
//! it checks one installed version against many advisory ranges). Run with
//! `cargo bench -p palisade-version --bench compare`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_version::{Scheme, Version, compare};

/// Version strings as they appear in distribution feeds and registries.
fn samples(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::Dpkg => &[
            "1:2.38.1-5+deb12u2",
            "2.36-9+deb12u4",
            "3.0.11-1~deb12u2",
            "1.2.13.dfsg-1",
            "7.88.1-10+deb12u5",
            "252.22-1~deb12u1",
            "2:8.2.3995-1ubuntu2.15",
            "1.0.0~rc1-2",
        ],
        Scheme::Apk => &[
            "3.1.4-r5",
            "1.36.1-r15",
            "2.4.58-r0",
            "8.5.0_p1-r0",
            "1.2.13_git20230101-r1",
            "3.0.12-r1",
            "1.1.1w-r1",
            "7.0.0_rc2-r0",
        ],
        Scheme::Rpm => &[
            "1:1.1.1k-9.el8_7",
            "2.17-326.el7_9.3",
            "3.0.7-25.el9_3",
            "5.14.0-362.24.1.el9_3",
            "1.20.1-1.module+el8.8.0+1234+abcdef12",
            "2:4.9.3-17.el7",
            "1.0~rc1^git20230101.abcdef-1.fc39",
            "252-18.el9",
        ],
        Scheme::Pep440 => &[
            "2.31.0",
            "1.26.0rc1",
            "3.2.post1",
            "0.104.0.dev20231101",
            "1!2.0.0",
            "4.0.0b3",
            "23.2.1",
            "1.0.0+ubuntu1",
        ],
        Scheme::Semver | Scheme::Cargo | Scheme::Pub => &[
            "4.17.21",
            "1.0.0-alpha.1",
            "18.2.0",
            "0.3.0-beta.12",
            "7.5.4",
            "2.0.0-rc.1+build.5",
            "1.1.0",
            "0.10.2",
        ],
        Scheme::Go => &[
            "v1.21.5",
            "v0.0.0-20231106174013-bbf56f31fb17",
            "v2.0.0+incompatible",
            "v0.17.0",
            "v1.58.3",
            "v1.2.4-0.20230101000000-abcdefabcdef",
            "v0.14.0",
            "v1.0.0-rc.1",
        ],
        Scheme::Maven => &[
            "2.15.3",
            "5.3.31",
            "2.13.4.2",
            "1.0-SNAPSHOT",
            "3.0.0-M9",
            "6.0.13.Final",
            "2.0.0-alpha-1",
            "32.1.3-jre",
        ],
        Scheme::RubyGems => &[
            "7.1.2",
            "6.1.7.6",
            "1.15.5",
            "2.0.0.rc1",
            "3.2.0.pre",
            "1.13.10",
            "0.9.2",
            "5.0.0.beta2",
        ],
        Scheme::NuGet => &[
            "13.0.3",
            "6.0.0-preview.7.21377.19",
            "4.7.2",
            "1.0.0.1",
            "8.0.0",
            "2.1.0-rc1-final",
            "3.1.32",
            "7.0.0-RC.2",
        ],
        Scheme::Composer => &[
            "v5.4.31",
            "6.4.0-RC1",
            "2.0.0-beta2",
            "1.0.0-p1",
            "10.3.2",
            "v3.0.0-alpha.3",
            "4.4.49",
            "1.x-dev",
        ],
        _ => &["1.0"],
    }
}

fn bench_schemes(criterion: &mut Criterion) {
    for &scheme in Scheme::all() {
        let versions = samples(scheme);
        let pairs: Vec<(&str, &str)> = versions
            .iter()
            .flat_map(|a| versions.iter().map(move |b| (*a, *b)))
            .collect();
        let parsed: Vec<(Version, Version)> = pairs
            .iter()
            .map(|(a, b)| {
                (
                    Version::parse(scheme, a).expect("sample parses"),
                    Version::parse(scheme, b).expect("sample parses"),
                )
            })
            .collect();
        let mut group = criterion.benchmark_group(scheme.name());
        group.throughput(Throughput::Elements(pairs.len() as u64));
        group.bench_function("compare", |bencher| {
            bencher.iter(|| {
                for (a, b) in &pairs {
                    black_box(compare(scheme, black_box(a), black_box(b)).ok());
                }
            })
        });
        group.bench_function("parsed", |bencher| {
            bencher.iter(|| {
                for (a, b) in &parsed {
                    black_box(black_box(a).partial_cmp(black_box(b)));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_schemes);
criterion_main!(benches);
