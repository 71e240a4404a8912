//! The benchmark's data set: N random unit vectors of dimension 384, spread
//! over N/10 subjects with a skewed distribution, all derived from one seed so
//! that any vector can be regenerated from its index (re-creating a subject
//! between repetitions needs no stored copy).

use lethe::grpc::pb;
use uuid::Uuid;

pub const DIM: usize = 384;
const SEED: u64 = 0x1e7e_5eed;
/// Namespace of the benchmark's point ids (v5 UUIDs of "<index>~<generation>").
const NS: Uuid = Uuid::from_u128(0x6c65_7468_6562_656e_6368_0000_0000_0001);

/// splitmix64: small, fast and good enough for timing data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A random unit vector, the same for the same index and stream.
pub fn vector(stream: u64, index: u64) -> Vec<f32> {
    let mut rng = Rng::new(SEED ^ stream.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ index.wrapping_mul(0x9e37_79b9));
    let mut v: Vec<f32> = (0..DIM).map(|_| rng.normal() as f32).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Who owns which vectors.
pub struct DataSet {
    pub n: usize,
    /// Vector indices per subject, in index order.
    pub members: Vec<Vec<u32>>,
    /// Subject of each vector (the load order interleaves subjects).
    pub owner: Vec<u32>,
    /// The one large subject (N/100 vectors: 10,000 at N = 1M).
    pub big: u32,
    /// Subjects with exactly 10 vectors.
    pub tens: Vec<u32>,
}

impl DataSet {
    /// Sizes: one subject of N/100, min(N/100, 2000) subjects of exactly 10,
    /// ten heavy subjects of N/2000…N/200, and the rest log-normal (median ≈ 6).
    pub fn new(n: usize) -> Self {
        let subjects = (n / 10).max(40);
        let big = (n / 100).max(10);
        let ten_count = (n / 100).clamp(10, 2000);
        let heavy: Vec<usize> = (1..=10).map(|i| (n / 2000 * i).max(1)).collect();
        let fixed = big + 10 * ten_count + heavy.iter().sum::<usize>();
        assert!(fixed < n, "--size {n} is too small (at least 2000)");
        let rest_subjects = subjects - 1 - ten_count - heavy.len();
        let rest = n - fixed;
        let mut rng = Rng::new(SEED);
        let weights: Vec<f64> = (0..rest_subjects).map(|_| rng.normal().exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut sizes: Vec<usize> =
            weights.iter().map(|w| ((w / total * rest as f64) as usize).max(1)).collect();
        let mut sum: usize = sizes.iter().sum();
        while sum != rest {
            let i = rng.below(sizes.len());
            if sum < rest {
                sizes[i] += 1;
                sum += 1;
            } else if sizes[i] > 1 {
                sizes[i] -= 1;
                sum -= 1;
            }
        }
        let mut all = vec![big];
        all.extend(std::iter::repeat_n(10, ten_count));
        all.extend(&heavy);
        all.extend(&sizes);
        let mut owner: Vec<u32> = Vec::with_capacity(n);
        for (s, &size) in all.iter().enumerate() {
            owner.extend(std::iter::repeat_n(s as u32, size));
        }
        for i in (1..owner.len()).rev() {
            let j = rng.below(i + 1);
            owner.swap(i, j);
        }
        let mut members = vec![Vec::new(); all.len()];
        for (i, &s) in owner.iter().enumerate() {
            members[s as usize].push(i as u32);
        }
        Self { n, members, owner, big: 0, tens: (1..=ten_count as u32).collect() }
    }

    pub fn subjects(&self) -> usize {
        self.members.len()
    }

    /// The subject's tag in generation `generation` (0 = as loaded).
    pub fn tag(subject: u32, generation: u32) -> String {
        if generation == 0 { format!("s{subject:07}") } else { format!("s{subject:07}~g{generation}") }
    }

    /// The tracked point for vector `index` owned by `subject`, as its
    /// `ordinal`-th chunk, in generation `generation` (own ids and tag).
    pub fn point(subject: u32, index: u32, ordinal: usize, generation: u32) -> pb::TrackedPoint {
        let tag = Self::tag(subject, generation);
        pb::TrackedPoint {
            point_id: point_id(index, generation, "").to_string(),
            source_id: format!("src-{tag}-{}", ordinal / 5),
            source_uri: String::new(),
            source_kind: "bench".into(),
            text: format!("chunk {ordinal} of {tag}"),
            tags: vec![pb::SubjectTag { subject_id: tag, role: pb::TagRole::Owner as i32 }],
            vector: vector(0, u64::from(index)),
        }
    }

    /// All points of a subject in a generation.
    pub fn subject_points(&self, subject: u32, generation: u32) -> Vec<pb::TrackedPoint> {
        self.members[subject as usize]
            .iter()
            .enumerate()
            .map(|(k, &i)| Self::point(subject, i, k, generation))
            .collect()
    }

    /// `size` points with the subject's tag in a generation: its own
    /// vectors first, then other indices' (fresh ids: the generation is new).
    pub fn sized_points(&self, subject: u32, size: usize, generation: u32) -> Vec<pb::TrackedPoint> {
        let own = &self.members[subject as usize];
        let others = (0..self.n as u32).filter(|i| self.owner[*i as usize] != subject);
        own.iter()
            .copied()
            .chain(others)
            .take(size)
            .enumerate()
            .map(|(k, i)| Self::point(subject, i, k, generation))
            .collect()
    }
}

pub fn point_id(index: u32, generation: u32, run: &str) -> Uuid {
    Uuid::new_v5(&NS, format!("{index}~{generation}{run}").as_bytes())
}
