"""QC figures of the rows a run writes, counted as ``bcftools stats`` counts them.

``count_batch`` takes one batch of output rows (Arrow, as the sharding step routes them) and
returns plain counts: records by variant type, transitions and transversions, indel lengths,
SNPs and indels by allele frequency, and per sample hom-ref, het, hom-alt, haploid, missing
calls and depth. ``add`` sums two such counts, so the counts of every batch of a shard, and of
every shard, add up into the run's; ``summary`` turns them into what ``_manifest.json`` keeps.

The definitions are htslib's and bcftools' (vcf.c ``bcf_set_variant_type``, vcfutils.c
``bcf_gt_type`` and ``bcf_calc_ac``, vcfstats.c), so that the numbers can be checked line by
line against ``bcftools stats`` (its SN, TSTV, IDD, AF and PSC lines):
- a record's type is the union of its ALT alleles' types; ``*``, ``<*>``, ``<NON_REF>``, ``X``
  and ALT ``.`` are no variant; breakends and ``*`` count in no type;
- transitions and transversions: SNP alleles whose first base and REF's first base are both
  A, C, G or T and differ (A<->G and C<->T are transitions);
- an indel's length is ALT's length less REF's after trimming the bases they share (deletions
  negative), capped at 60 as bcftools caps it;
- the allele frequency bin of an allele: AC/AN from INFO (bin 0 for AC=1 or no AC/AN), in
  ``max(101, samples + 1)`` bins as bcftools makes them;
- per sample, as bcftools' PSC: hom-ref, het and hom-alt at sites where the called alleles are
  SNPs (or no ALT); calls with an indel allele count as indels; a GT with a missing allele is
  missing; a one-allele GT is haploid; depth is FORMAT/DP where there is a DP field, else the sum
  of AD.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core.schema import (
    ALT,
    ALTERNATE_BASES,
    CALL,
    GENOTYPE,
    HOM_REF_CALL,
    REFERENCE_BASES,
    SAMPLE_ID,
)

# htslib's variant types (vcf.h)
REF, SNP, MNP, INDEL, OTHER, BND, OVERLAP = 0, 1, 2, 4, 8, 16, 32
MAX_INDEL = 60  # bcftools stats' m_indel: longer indels count at 60
SITE_KEYS = ("records", "no_alts", "snps", "mnps", "indels", "others", "multiallelic", "multiallelic_snps")
TSTV_KEYS = ("ts", "tv", "ts_first_alt", "tv_first_alt")
# per sample, in this order (bcftools PSC: nRefHom nNonRefHom nHets nTransitions nTransversions
# nIndels, the depth as a sum and a count, nHapRef nHapAlt nMissing)
SAMPLE_KEYS = (
    "hom_ref", "hom_alt", "het", "ts", "tv", "indels",
    "depth_sum", "depth_calls", "hap_ref", "hap_alt", "missing",
)  # fmt: skip
# bcf_gt_type's classes
_UNKNOWN, _HOM_RR, _HOM_AA, _HET_RA, _HET_AA, _HAPL_R, _HAPL_A, _NO_GT = range(8)


def af_bins(samples: int) -> int:
    """bcftools stats' number of allele-frequency bins (m_af)."""
    return max(101, samples + 1)


@functools.lru_cache(maxsize=65536)
def allele_type(ref: str, alt: str) -> tuple[int, int]:
    """(type, length) of one ALT allele against REF: htslib's bcf_set_variant_type. ``None``:
    the null ALT of a record whose ALT is '.' but which has Number=A values (no variant)."""
    if alt is None or not ref:
        return REF, 0
    if alt == "*":
        return OVERLAP, 0
    if len(ref) == 1 and len(alt) == 1:
        if alt in (".", "X") or ref == alt:
            return REF, 0
        return SNP, 1
    if alt.startswith("<"):
        return (REF, 0) if alt in ("<X>", "<*>", "<NON_REF>") else (OTHER, 0)
    if alt[0] in "[]":
        return BND, 0
    r = a = 0
    while r < len(ref) and a < len(alt) and ref[r].upper() == alt[a].upper():
        r, a = r + 1, a + 1
    if a < len(alt) and r == len(ref):
        if alt[-1] in "[]":
            return BND, 0
        return INDEL, len(alt) - len(ref)
    if r < len(ref) and a == len(alt):
        return INDEL, len(alt) - len(ref)
    if r == len(ref) and a == len(alt):
        return REF, 0
    re_, ae = len(ref) - 1, len(alt) - 1
    if alt[ae] in "[]":
        return BND, 0
    while re_ > r and ae > a and ref[re_].upper() == alt[ae].upper():
        re_, ae = re_ - 1, ae - 1
    if ae == a:
        if re_ == r:
            return SNP, 1
        return (INDEL if ref[re_].upper() == alt[ae].upper() else OTHER), -(re_ - r)
    if re_ == r:
        return (INDEL if ref[re_].upper() == alt[ae].upper() else OTHER), ae - a
    if re_ - r == ae - a:
        return MNP, ae - a + 1
    return OTHER, -(re_ - r + 1) if re_ - r > ae - a else ae - a + 1


def _string_bytes(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first byte, last byte, length in bytes) of each string (bytes 0 for an empty one)."""
    strings = strings.cast(pa.large_string()) if pa.types.is_string(strings.type) else strings
    _, offsets, data = strings.buffers()
    ends = np.frombuffer(offsets, np.int64)[strings.offset : strings.offset + len(strings) + 1]
    text = np.append(np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8), 0)
    length = np.diff(ends)
    empty = length == 0
    first = np.where(empty, 0, text[np.where(empty, len(text) - 1, ends[:-1])])
    last = np.where(empty, 0, text[np.where(empty, len(text) - 1, ends[1:] - 1)])
    return first, last, length


_UPPER = np.arange(256, dtype=np.uint8)
_UPPER[ord("a") : ord("z") + 1] -= 32
_SPECIAL_FIRST = np.zeros(256, bool)  # ALTs no fast shape covers: symbolic, breakend, *, ., X
_SPECIAL_FIRST[[ord(c) for c in "<[]*.X"]] = True
_BRACKET = np.zeros(256, bool)
_BRACKET[[ord("["), ord("]")]] = True
_BASE = np.full(256, -1, np.int64)  # bcf_acgt2int: 0-3 for A, C, G, T (either case), else -1
for _i, _b in enumerate("ACGT"):
    _BASE[ord(_b)] = _BASE[ord(_b.lower())] = _i


def _allele_types(refs: pa.Array, rows: np.ndarray, alts: pa.Array, ref_bytes=None, alt_bytes=None):
    """(type, length) arrays: allele_type of each ALT allele against its row's REF (``rows``: the
    row of each), the common shapes without Python: one base each, and an indel that keeps
    REF's first base with one side a single base. ``*_bytes``: _string_bytes of each, if known."""
    n = len(alts)
    types = np.zeros(n, np.int64)
    lengths = np.zeros(n, np.int64)
    ref_first, _, ref_len = ref_bytes or _string_bytes(refs)
    ref_first, ref_len = ref_first[rows], ref_len[rows]
    alt_first, alt_last, alt_len = alt_bytes or _string_bytes(alts)
    special = _SPECIAL_FIRST[alt_first]
    snv = (ref_len == 1) & (alt_len == 1) & ~special
    changed = snv & (ref_first != alt_first)  # htslib compares one-base alleles case-sensitively
    types[changed] = SNP
    lengths[changed] = 1
    same_first = _UPPER[ref_first] == _UPPER[alt_first]
    one_side = (ref_len != alt_len) & ((ref_len == 1) | (alt_len == 1))
    simple = same_first & ~special & ~_BRACKET[alt_last] & one_side
    types[simple] = INDEL
    lengths[simple] = (alt_len - ref_len)[simple]
    rest = np.flatnonzero(~snv & ~simple)
    if len(rest):
        pairs = zip(refs.take(rows[rest]).to_pylist(), alts.take(rest).to_pylist())
        found = np.array([allele_type(r, a) for r, a in pairs], np.int64).reshape(-1, 2)
        types[rest], lengths[rest] = found[:, 0], found[:, 1]
    return types, lengths


def _column(table: pa.Table, name: str) -> pa.Array | None:
    if name not in table.column_names:
        return None
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _info_allele_counts(table: pa.Table, alts: pa.ListArray, rows: np.ndarray, first: np.ndarray):
    """(AC of each ALT allele, AN of its row) from INFO, NaN where missing; None without both.
    AC is a field of alternate_bases when Number=A, else a list column of its own."""
    an = _column(table, "AN")
    if an is None or not pa.types.is_integer(an.type):
        return None
    struct = alts.flatten()
    if pa.types.is_struct(struct.type) and struct.type.get_field_index("AC") >= 0:
        ac = struct.field("AC")
        if not pa.types.is_integer(ac.type):
            return None
        values = np.asarray(ac.to_numpy(zero_copy_only=False), np.float64)
    else:
        ac = _column(table, "AC")
        if ac is None or not pa.types.is_list(ac.type) or not pa.types.is_integer(ac.type.value_type):
            return None
        lengths = pc.fill_null(pc.list_value_length(ac), 0).to_numpy(zero_copy_only=False)
        starts = np.cumsum(lengths) - lengths
        flat = np.append(np.asarray(pc.list_flatten(ac).to_numpy(zero_copy_only=False), np.float64), np.nan)
        k = np.arange(len(rows)) - first[rows]  # the allele's place in its row's AC
        values = flat[np.where(k < lengths[rows], starts[rows] + k, len(flat) - 1)]
    return values, np.asarray(an.to_numpy(zero_copy_only=False), np.float64)[rows]


def _called_allele_counts(genotypes: _Genotypes, first: np.ndarray, n_alts: np.ndarray, rows: np.ndarray):
    """(AC of each ALT allele, AN of its row) counted in the calls' genotypes, NaN for the
    alleles of rows without GT (bcf_calc_ac from FORMAT)."""
    values, call_row, klass = genotypes.values, genotypes.call_row, genotypes.klass
    if genotypes.call_of_value is None:
        row_of_value = np.repeat(call_row, 2)
    else:
        row_of_value = call_row[genotypes.call_of_value]
    called = values >= 0
    an = np.bincount(row_of_value[called], minlength=len(first)).astype(np.float64)
    alt = called & (values > 0) & (values <= n_alts[row_of_value])
    at = first[row_of_value[alt]] + values[alt] - 1
    ac = np.bincount(at, minlength=len(rows)).astype(np.float64)
    has_gt = np.bincount(call_row[klass != _NO_GT], minlength=len(first)) > 0
    ac[~has_gt[rows]] = np.nan
    return ac, an[rows]


def _af_index(ac: np.ndarray, an: np.ndarray, samples: int) -> np.ndarray:
    """bcftools' allele-frequency bin of each ALT allele (init_iaf): 0 for singletons and
    alleles without counts, 1 where AN is 0, else 1 + AC/AN in af_bins(samples) - 2 steps."""
    usable = ~np.isnan(an) & ~np.isnan(ac)
    ratio = np.zeros(len(ac), np.float32)  # in float32, as bcftools divides
    np.divide(ac.astype(np.float32), an.astype(np.float32), where=usable & (an > 0), out=ratio)
    binned = (np.clip(ratio, 0, 1) * np.float32(af_bins(samples) - 2)).astype(np.int64) + 1
    index = np.where(usable, binned, 0)
    index[usable & (an == 0)] = 1
    index[usable & (ac == 1)] = 0
    return index


def count_batch(batch: pa.RecordBatch | pa.Table, samples: int) -> dict:
    """The QC counts of one batch of output rows (see the module doc). ``samples``: the run's
    sample count (it sets the allele-frequency bins)."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    n = table.num_rows
    refs = _column(table, REFERENCE_BASES)
    alts = _column(table, ALTERNATE_BASES)
    alt_values = alts.flatten().field(ALT) if pa.types.is_struct(alts.type.value_type) else alts.flatten()
    rows = pc.list_parent_indices(alts).to_numpy()
    n_alts = pc.list_value_length(alts).to_numpy(zero_copy_only=False)
    first = np.cumsum(n_alts) - n_alts  # each row's first allele among the flattened ones
    allele_index = np.arange(len(rows)) - first[rows] + 1  # 1 for the first ALT
    ref_bytes, alt_bytes = _string_bytes(refs), _string_bytes(alt_values)
    types, lengths = _allele_types(refs, rows, alt_values, ref_bytes, alt_bytes)
    line_type = np.zeros(n, np.int64)  # the union of each row's allele types
    with_alts = n_alts > 0
    if with_alts.any():
        line_type[with_alts] = np.bitwise_or.reduceat(types, first[with_alts])
    sites = {
        "records": n,
        "no_alts": int(np.sum(line_type == REF)),
        "snps": int(np.sum(line_type & SNP > 0)),
        "mnps": int(np.sum(line_type & MNP > 0)),
        "indels": int(np.sum(line_type & INDEL > 0)),
        "others": int(np.sum(line_type & OTHER > 0)),
        "multiallelic": int(np.sum(n_alts > 1)),
        "multiallelic_snps": int(np.sum((n_alts > 1) & (line_type == SNP))),
    }
    # transitions and transversions (do_snp_stats): first bases of REF and of the SNP allele
    ref_base, alt_base = _BASE[ref_bytes[0]], _BASE[alt_bytes[0]]
    row_ref = ref_base[rows]
    snp = ((types & SNP) > 0) & (row_ref >= 0) & (alt_base >= 0) & (row_ref != alt_base)
    transition = snp & (np.abs(row_ref - alt_base) == 2)
    transversion = snp & ~transition
    first_alt = allele_index == 1
    tstv = {
        "ts": int(transition.sum()),
        "tv": int(transversion.sum()),
        "ts_first_alt": int((transition & first_alt).sum()),
        "tv_first_alt": int((transversion & first_alt).sum()),
    }
    indel = (types & INDEL) > 0
    capped = np.sign(lengths[indel]) * np.minimum(np.abs(lengths[indel]), MAX_INDEL)
    indel_lengths = np.bincount(capped + MAX_INDEL, minlength=2 * MAX_INDEL + 1)  # -60 .. 60
    genotypes = _genotypes(table)
    ac = an = np.full(len(rows), np.nan)
    info = _info_allele_counts(table, alts, rows, first)
    if info is not None:
        ac, an = info
    missing = np.isnan(ac) | np.isnan(an)
    if genotypes is not None and missing.any():  # INFO without AC and AN: the calls' (stats -s)
        from_calls = _called_allele_counts(genotypes, first, n_alts, rows)
        ac, an = np.where(missing, from_calls[0], ac), np.where(missing, from_calls[1], an)
    af = _af_index(ac, an, samples)
    masks = (snp, transition, transversion, indel)
    by_af = np.stack([np.bincount(af[mask], minlength=af_bins(samples)) for mask in masks], axis=1)
    return {
        "sites": sites,
        "tstv": tstv,
        "indel_lengths": indel_lengths,  # alleles per length, from -60 (index 0) to 60
        "af": by_af,  # per bcftools AF bin: SNPs, transitions, transversions, indels
        "samples": _sample_counts(table, genotypes, types, first, ref_base, alt_base),
    }


def _gt_classes(genotype: pa.ListArray) -> tuple[np.ndarray, ...]:
    """(class, ial, jal, the allele indexes, the call of each index) of each call's genotype
    (bcf_gt_type); diploid calls, the usual case, are read as pairs."""
    calls = len(genotype)
    values = genotype.flatten().to_numpy(zero_copy_only=False)
    ploidy = pc.fill_null(pc.list_value_length(genotype), 0).to_numpy(zero_copy_only=False)
    if len(values) == 2 * calls and np.all(ploidy == 2):
        # allele indexes as bytes where they fit (the comparisons then move an eighth of the memory)
        small = values.astype(np.int8) if len(values) and values.max() < 128 else values
        klass, ial, jal = _diploid(small[0::2], small[1::2])
        return klass, ial, jal, values, None  # (the call of each index: 0, 0, 1, 1, ...)
    parent = pc.list_parent_indices(genotype).to_numpy()
    missing = np.bincount(parent[values < 0], minlength=calls) > 0
    has_ref = np.bincount(parent[values == 0], minlength=calls) > 0
    start = np.cumsum(ploidy) - ploidy
    ial = np.zeros(calls, np.int64)
    jal = np.zeros(calls, np.int64)
    klass = np.full(calls, _UNKNOWN, np.int8)
    klass[ploidy == 0] = _NO_GT
    one = np.flatnonzero((ploidy == 1) & ~missing)
    a = values[start[one]]
    klass[one] = np.where(a == 0, _HAPL_R, _HAPL_A)
    ial[one] = a
    two = np.flatnonzero((ploidy == 2) & ~missing)
    klass[two], ial[two], jal[two] = _diploid(values[start[two]], values[start[two] + 1])
    for call in np.flatnonzero((ploidy > 2) & ~missing):  # polyploid: bcf_gt_type's own loop
        i = j = kinds = 0
        for allele in values[start[call] : start[call] + ploidy[call]].tolist():
            if allele > 0:
                if not i:
                    i, kinds = allele, 1
                elif allele != i:
                    i, j = (allele, i) if allele < i else (i, allele)
                    kinds = 2
        ial[call], jal[call] = i, j
        if has_ref[call]:
            klass[call] = _HET_RA if kinds else _HOM_RR
        else:
            klass[call] = _HOM_AA if kinds == 1 else _HET_AA
    return klass, ial, jal, values, parent


_CALLED = np.zeros(8, bool)
_CALLED[[_HOM_RR, _HOM_AA, _HET_RA, _HET_AA]] = True


def _diploid(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class, ial, jal) of diploid genotypes a/b (bcf_gt_type; ial, jal: their smaller and
    larger ALT allele, 0 for none)."""
    low, high = np.minimum(a, b), np.maximum(a, b)
    ial = np.where(low > 0, low, np.maximum(high, 0))
    jal = np.where((low > 0) & (low != high), high, 0)
    klass = np.full(len(a), _HET_RA, np.int8)
    both_alt = (a > 0) & (b > 0)
    klass[both_alt] = _HET_AA
    klass[both_alt & (a == b)] = _HOM_AA
    klass[(a == 0) & (b == 0)] = _HOM_RR
    klass[(a < 0) | (b < 0)] = _UNKNOWN
    return klass, ial, jal


class _Genotypes(NamedTuple):
    values: np.ndarray  # the allele indexes of every genotype, call after call
    call_of_value: np.ndarray | None  # the call of each (None: every call diploid)
    call_row: np.ndarray  # the row of each call
    klass: np.ndarray  # each call's bcf_gt_type class
    ial: np.ndarray  # its smaller ALT allele (0: none)
    jal: np.ndarray  # its other ALT allele (0: none)
    calls: pa.StructArray


def _genotypes(table: pa.Table) -> _Genotypes | None:
    """The genotypes of the table's calls, classified; None without calls."""
    calls = _column(table, CALL)
    if calls is None or not len(calls):
        return None
    per_call = calls.flatten()
    klass, ial, jal, values, call_of_value = _gt_classes(per_call.field(GENOTYPE))
    return _Genotypes(
        values, call_of_value, pc.list_parent_indices(calls).to_numpy(), klass, ial, jal, per_call
    )


def _sample_counts(table, genotypes, types, first, ref_base, alt_base) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, their SAMPLE_KEYS counts: a row each) (bcftools' do_sample_stats)."""
    counts = _NO_SAMPLES
    if genotypes is not None:
        call_row, klass, ial, jal, per_call = (
            genotypes.call_row,
            genotypes.klass,
            genotypes.ial,
            genotypes.jal,
            genotypes.calls,
        )
        n_alleles = (np.diff(np.append(first, len(types))) + 1)[call_row]
        call_first = first[call_row]
        padded_types = np.append(types, REF).astype(np.int8)
        padded_bases = np.append(alt_base, -1).astype(np.int8)

        def allele(index):
            """The type and the first base of each call's allele ``index`` (0: REF)."""
            allele_type = np.zeros(len(index), np.int8)
            base = np.full(len(index), -1, np.int8)
            some = np.flatnonzero((index > 0) & (index < n_alleles))
            at = call_first[some] + index[some] - 1
            allele_type[some], base[some] = padded_types[at], padded_bases[at]
            return allele_type, base

        i_type, i_base = allele(ial)
        j_type, j_base = allele(jal)
        var_type = i_type | j_type
        called = _CALLED[klass]  # not missing, not haploid, with a GT
        snp_site = called & (((var_type & SNP) > 0) | (var_type == REF))
        ref = ref_base.astype(np.int8)[call_row]
        ts = np.zeros(len(per_call), np.int8)  # a 1/2 call of two SNP alleles counts two
        tv = np.zeros(len(per_call), np.int8)
        # sample_gt_stats counts a SNP allele as a transition or transversion, and returns
        # (counting nothing more for the call) at one whose first base is not A, C, G or T
        stopped = np.zeros(len(per_call), bool)
        for base, kind, also in ((i_base, i_type, True), (j_base, j_type, ial != jal)):
            counted = snp_site & (klass != _HOM_RR) & ((kind & SNP) > 0) & also & ~stopped
            stopped |= counted & (base < 0)
            counted &= base >= 0
            ts_here = counted & (np.abs(ref - base) == 2)
            ts += ts_here
            tv += counted & ~ts_here
        depth = _depth(per_call)
        columns = [
            snp_site & (klass == _HOM_RR),
            snp_site & (klass == _HOM_AA),
            snp_site & ((klass == _HET_RA) | (klass == _HET_AA)),
            ts,
            tv,
            called & ((var_type & INDEL) > 0) & (klass != _HOM_RR) & ~stopped,
            np.zeros(len(per_call), np.int64) if depth is None else np.maximum(depth, 0),
            np.zeros(len(per_call), bool) if depth is None else depth > 0,
            klass == _HAPL_R,
            klass == _HAPL_A,
            klass == _UNKNOWN,
        ]
        samples, per_sample = _by_sample(
            per_call.field(SAMPLE_ID).to_numpy(zero_copy_only=False), table.num_rows
        )
        summed = np.stack([per_sample(c) for c in columns], axis=1).astype(np.int64)
        counts = add_samples(counts, (np.asarray(samples, np.int64), summed))
    hom_ref = _column(table, HOM_REF_CALL)  # --move_hom_ref_calls: the 0/0 calls, apart
    if hom_ref is not None and len(hom_ref):
        moved = hom_ref.flatten().field(SAMPLE_ID).to_numpy(zero_copy_only=False)
        unique, number = np.unique(moved, return_counts=True)
        hom_refs = np.zeros((len(unique), len(SAMPLE_KEYS)), np.int64)
        hom_refs[:, 0] = number
        counts = add_samples(counts, (unique.astype(np.int64), hom_refs))
    return counts


def _by_sample(ids: np.ndarray, rows: int):
    """(the sample ids, a function summing a per-call column per sample). Calls come row by row;
    when every row has the same samples in the same order (one input, or a merge with no
    sample missing anywhere), the sums are column sums of a rows x samples matrix."""
    if rows and len(ids) % rows == 0:
        matrix = ids.reshape(rows, -1)
        if np.array_equal(matrix, np.broadcast_to(matrix[0], matrix.shape)):
            return matrix[0], lambda column: column.reshape(rows, -1).sum(axis=0)
    samples, inverse = np.unique(ids, return_inverse=True)
    return samples, lambda column: np.bincount(inverse, weights=column, minlength=len(samples))


def _depth(per_call: pa.StructArray) -> np.ndarray | None:
    """Each call's depth: FORMAT/DP, or without a DP field the sum of AD (-1: none)."""
    names = [per_call.type.field(i).name for i in range(per_call.type.num_fields)]
    if "DP" in names and pa.types.is_integer(per_call.field("DP").type):
        return pc.fill_null(per_call.field("DP"), -1).to_numpy(zero_copy_only=False)
    if "AD" in names and pa.types.is_list(per_call.field("AD").type):
        ad = per_call.field("AD")
        parent = pc.list_parent_indices(ad).to_numpy()
        values = ad.flatten()
        present = values.is_valid().to_numpy(zero_copy_only=False)
        filled = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
        total = np.bincount(parent, weights=filled, minlength=len(per_call)).astype(np.int64)
        any_value = np.bincount(parent, weights=present, minlength=len(per_call)) > 0
        return np.where(any_value, total, -1)
    return None


_NO_SAMPLES = (np.zeros(0, np.int64), np.zeros((0, len(SAMPLE_KEYS)), np.int64))


def add_samples(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The sum of two (sample ids, counts) pairs; the usual case (the same samples in the same
    order) is one array addition."""
    (ids_a, counts_a), (ids_b, counts_b) = a, b
    if np.array_equal(ids_a, ids_b):
        return ids_a, counts_a + counts_b
    ids = np.union1d(ids_a, ids_b)
    counts = np.zeros((len(ids), len(SAMPLE_KEYS)), np.int64)
    np.add.at(counts, np.searchsorted(ids, ids_a), counts_a)
    np.add.at(counts, np.searchsorted(ids, ids_b), counts_b)
    return ids, counts


def add(a: dict, b: dict) -> dict:
    """The sum of two counts (of count_batch, or sums of them)."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif key == "samples":
            out[key] = add_samples(out[key], value)
        elif isinstance(value, dict):
            out[key] = add(out[key], value)
        else:  # a number or an array
            out[key] = out[key] + value
    return out


def summary(counts: dict, samples: int, names: dict[str, str] | None = None) -> dict:
    """What the manifest keeps: the counts with the allele-frequency bins as bcftools prints
    them (singletons apart, then folded into the first bin) and per-sample counts by name."""
    bins = af_bins(samples)
    by_bin = np.asarray(counts.get("af", np.zeros((bins, 4), np.int64)), np.int64)
    singletons = by_bin[0].tolist() if len(by_bin) else [0, 0, 0, 0]
    if len(by_bin) > 1:
        by_bin = by_bin.copy()
        by_bin[1] += by_bin[0]  # singletons count in the first bin too, as bcftools prints AF
    af = {int(i): by_bin[i].tolist() for i in np.flatnonzero(by_bin.any(axis=1)) if i > 0}
    lengths = np.asarray(counts.get("indel_lengths", np.zeros(2 * MAX_INDEL + 1, np.int64)))
    per_sample = {}
    ids, values_of = counts.get("samples", _NO_SAMPLES)
    for sample_id, values in zip(ids.tolist(), values_of.tolist()):
        named = dict(zip(SAMPLE_KEYS, values))
        calls = named.pop("depth_calls")
        depth = named.pop("depth_sum")
        named["mean_depth"] = round(depth / calls, 1) if calls else None
        per_sample[(names or {}).get(str(sample_id), str(sample_id))] = named
    sites = {k: counts.get("sites", {}).get(k, 0) for k in SITE_KEYS}
    tstv = {k: counts.get("tstv", {}).get(k, 0) for k in TSTV_KEYS}
    return {
        **sites,
        **tstv,
        "ts_tv": round(tstv["ts"] / tstv["tv"], 2) if tstv["tv"] else None,
        "indel_lengths": {str(i - MAX_INDEL): int(lengths[i]) for i in np.flatnonzero(lengths)},
        "allele_frequency": [
            {"af": round((i - 1) / (bins - 1), 6), "snps": v[0], "ts": v[1], "tv": v[2], "indels": v[3]}
            for i, v in sorted(af.items())
        ],
        "singletons": dict(zip(("snps", "ts", "tv", "indels"), singletons)),
        "samples": per_sample,
    }
