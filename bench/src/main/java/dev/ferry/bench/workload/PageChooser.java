package dev.ferry.bench.workload;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks the page of the next write; one instance per vCPU, allocation-free per pick. */
interface PageChooser {
    long next(SplittableRandom random);

    /** Any of {@code pages} pages, equally likely. */
    static PageChooser uniform(long pages) {
        return random -> random.nextLong(pages);
    }

    /** The first {@code hotPages} pages, equally likely. */
    static PageChooser hotset(long hotPages) {
        return random -> random.nextLong(hotPages);
    }

    /** A sweep over every page: vCPU {@code lane} of {@code lanes} writes pages lane, lane+lanes, ... */
    static PageChooser sequential(long pages, int lane, int lanes) {
        return new Sequential(pages, lane, lanes);
    }

    /** Pages by Zipf popularity with exponent {@code s}; the ranks are scattered over memory. */
    static PageChooser zipf(Zipf distribution) {
        return distribution::next;
    }

    final class Sequential implements PageChooser {
        private final long pages;
        private final int lanes;
        private long next;

        Sequential(long pages, int lane, int lanes) {
            this.pages = pages;
            this.lanes = lanes;
            this.next = lane % pages;
        }

        @Override
        public long next(SplittableRandom random) {
            long page = next;
            next += lanes;
            if (next >= pages) {
                next -= pages;
            }
            return page;
        }
    }

    /**
     * Zipf(s) over {@code pages} ranks: rank r (from 1) has weight 1/r^s. Sampled by binary search of
     * a precomputed CDF shared read-only by the vCPUs. Rank r is page {@code (r-1) * P mod pages}
     * with P a prime above 2^28, a bijection that keeps hot pages apart as in a real heap.
     */
    final class Zipf {
        private static final long SCATTER = 1_000_000_007L;

        private final long pages;
        private final double[] cdf;

        Zipf(long pages, double s) {
            if (pages > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("zipf supports at most 2^31 pages, got " + pages);
            }
            this.pages = pages;
            this.cdf = new double[(int) pages];
            double sum = 0;
            for (int r = 0; r < pages; r++) {
                sum += Math.pow(r + 1, -s);
                cdf[r] = sum;
            }
            for (int r = 0; r < pages; r++) {
                cdf[r] /= sum;
            }
        }

        /** The probability of the {@code rank}th most popular page (from 0). */
        double probability(int rank) {
            return cdf[rank] - (rank == 0 ? 0 : cdf[rank - 1]);
        }

        /** The page of the {@code rank}th most popular page (from 0). */
        long page(long rank) {
            return Math.floorMod(rank * SCATTER, pages);
        }

        long next(SplittableRandom random) {
            int rank = Arrays.binarySearch(cdf, random.nextDouble());
            if (rank < 0) {
                rank = -rank - 1;
            }
            return page(Math.min(rank, cdf.length - 1));
        }
    }
}
