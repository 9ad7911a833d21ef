//! The on-disk form of cells: one value per (hour, entity) holding that hour's buckets,
//! 16 bytes each: `requests`, `errors`, `latency_ms_sum` as little-endian `f32`, then
//! one flag byte per metric. NaN requests mean "no data"; negative mean "invalid".

use graph_core::detect::{Cell, CellValue, PointFlags};
use graph_core::model::{BucketWidth, Counters, Metric, Tick};

/// Seconds covered by one stored chunk.
pub const CHUNK_SECONDS: i64 = 3600;

/// Bytes per cell on disk.
pub const CELL_BYTES: usize = 16;

/// The chunk (hour start) that holds `tick`.
pub fn chunk_of(tick: Tick) -> i64 {
    tick.div_euclid(CHUNK_SECONDS) * CHUNK_SECONDS
}

/// Position of `tick` inside its chunk.
pub fn slot_of(tick: Tick, width: BucketWidth) -> usize {
    ((tick - chunk_of(tick)) / width.seconds()) as usize
}

/// Cells per chunk for `width` (which must divide an hour).
pub fn cells_per_chunk(width: BucketWidth) -> usize {
    (CHUNK_SECONDS / width.seconds()) as usize
}

/// An empty chunk: every cell without data.
pub fn empty_chunk(width: BucketWidth) -> Vec<u8> {
    let mut v = vec![0u8; cells_per_chunk(width) * CELL_BYTES];
    for slot in 0..cells_per_chunk(width) {
        write_cell(&mut v, slot, &Cell::MISSING);
    }
    v
}

/// Reads cell `slot` of a chunk.
pub fn read_cell(chunk: &[u8], slot: usize) -> Cell {
    let Some(b) = chunk.get(slot * CELL_BYTES..(slot + 1) * CELL_BYTES) else {
        return Cell::MISSING;
    };
    let f = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let requests = f(0);
    let mut cell = if requests.is_nan() {
        Cell::MISSING
    } else {
        // Negative requests re-create an invalid cell, as `Cell::new` marks them.
        Cell::new(&Counters {
            requests: f64::from(requests),
            errors: f64::from(f(4)),
            latency_ms_sum: f64::from(f(8)),
        })
    };
    for (i, m) in Metric::ALL.iter().enumerate() {
        cell.set_flags(*m, PointFlags::from_bits_truncate(b[12 + i]));
    }
    cell
}

/// Writes `cell` into `slot` of a chunk.
pub fn write_cell(chunk: &mut [u8], slot: usize, cell: &Cell) {
    let (r, e, l) = match cell.value() {
        CellValue::NoData => (f32::NAN, f32::NAN, f32::NAN),
        CellValue::Invalid => (-1.0, -1.0, -1.0),
        CellValue::Valid(c) => (c.requests as f32, c.errors as f32, c.latency_ms_sum as f32),
    };
    let b = &mut chunk[slot * CELL_BYTES..(slot + 1) * CELL_BYTES];
    b[0..4].copy_from_slice(&r.to_le_bytes());
    b[4..8].copy_from_slice(&e.to_le_bytes());
    b[8..12].copy_from_slice(&l.to_le_bytes());
    for (i, f) in cell.all_flags().iter().enumerate() {
        b[12 + i] = f.bits();
    }
}

/// Adds `delta` to cell `slot` (late data adds to what is there), keeping its flags.
pub fn add_to_cell(chunk: &mut [u8], slot: usize, delta: &Counters) {
    let old = read_cell(chunk, slot);
    let mut sum = old.counters().unwrap_or_default();
    sum.add(delta);
    let mut cell = Cell::new(&sum);
    for (i, m) in Metric::ALL.iter().enumerate() {
        cell.set_flags(*m, old.all_flags()[i]);
    }
    write_cell(chunk, slot, &cell);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_with_flags_and_missing_and_invalid_states() {
        let w = BucketWidth::FIVE_MINUTES;
        let mut chunk = empty_chunk(w);
        assert_eq!(chunk.len(), 12 * CELL_BYTES);
        assert_eq!(read_cell(&chunk, 3).value(), CellValue::NoData);
        add_to_cell(
            &mut chunk,
            3,
            &Counters {
                requests: 10.0,
                errors: 1.0,
                latency_ms_sum: 100.0,
            },
        );
        add_to_cell(
            &mut chunk,
            3,
            &Counters {
                requests: 5.0,
                errors: 0.0,
                latency_ms_sum: 50.0,
            },
        );
        let mut c = read_cell(&chunk, 3);
        assert_eq!(c.counters().unwrap().requests, 15.0);
        c.set_flags(
            Metric::Latency,
            PointFlags::ANOMALOUS | PointFlags::CANDIDATE,
        );
        write_cell(&mut chunk, 3, &c);
        let back = read_cell(&chunk, 3);
        assert!(back.flags(Metric::Latency).contains(PointFlags::ANOMALOUS));
        assert_eq!(back.counters().unwrap().latency_ms_sum, 150.0);
        write_cell(
            &mut chunk,
            4,
            &Cell::new(&Counters {
                requests: f64::NAN,
                errors: 0.0,
                latency_ms_sum: 0.0,
            }),
        );
        assert_eq!(read_cell(&chunk, 4).value(), CellValue::Invalid);
        assert_eq!(slot_of(3600 * 5 + 600, w), 2);
        assert_eq!(chunk_of(3600 * 5 + 600), 3600 * 5);
    }
}
