# bench/plot.gp: throughput and p99 latency against offered load (bench/e2e.py).
# gnuplot -e "datafile='X.dat'; outfile='X.png'" bench/plot.gp
# Columns: offered_pct offered_pps accepted_htlc_s settled_htlc_s p99_ms p50_ms wire_p99_ms
# wire_p50_ms (p*_ms: ampd's TSC stamps; wire_*: the recorder's kernel stamps on the veth)
set terminal pngcairo size 900,540 font "DejaVu Sans,11" noenhanced
set output outfile
set title "ampd over net_af_packet (veth, tcpreplay --pps): throughput and latency vs offered load"
set xlabel "offered load (% of the capacity probed over this path: af_packet, tcpreplay at 125% of net_pcap's)"
set ylabel "HTLCs per second"
set y2label "fulfill latency, ms"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set xrange [0:140]
set xtics 25
set grid ytics
set key left top
plot datafile using 1:2 with linespoints lw 1 dt 2 pt 1 lc rgb "#888888" title "offered (pps)", \
     datafile using 1:3 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "accepted HTLCs/s", \
     datafile using 1:4 with linespoints lw 2 pt 5 lc rgb "#2ca02c" title "settled HTLCs/s", \
     datafile using 1:5 axes x1y2 with linespoints lw 2 pt 9 lc rgb "#d62728" title "p99 fulfill latency, ampd TSC (ms)", \
     datafile using 1:6 axes x1y2 with linespoints lw 1 pt 8 lc rgb "#ff9896" title "p50 fulfill latency, ampd TSC (ms)", \
     datafile using 1:7 axes x1y2 with linespoints lw 2 dt 3 pt 11 lc rgb "#9467bd" title "p99 fulfill latency, wire (ms)", \
     datafile using 1:8 axes x1y2 with linespoints lw 1 dt 3 pt 10 lc rgb "#c5b0d5" title "p50 fulfill latency, wire (ms)"
