package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.SourceVmState;
import dev.ferry.core.VmControl;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.RepeatedTest;

/**
 * A page channel lost as the source pauses for post-copy, before the destination switched: the
 * destination fails (a loss before post-copy) and says so before POSTCOPY_RUNNING, so the guest
 * must run on the source again; or the destination switched first and the loss is recovered.
 * Either way it runs on exactly one side. Before the fix the source kept it paused while the
 * destination never ran it: it ran nowhere.
 */
class PostcopySwitchLossTest {
    private static final long SIZE = 16L << 20;

    @RepeatedTest(3)
    void aPageChannelLostAsThePostcopySwitchBeginsLeavesTheGuestRunningOnExactlyOneSide() throws Exception {
        MigrationParameters postcopy = MigrationParameters.builder().mode(dev.ferry.core.MigrationMode.POSTCOPY).channels(2)
                .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY)).recoverTimeoutMillis(3_000)
                .peerTimeoutMillis(2_000).build();
        try (TestGuest target = new TestGuest(SIZE, 0, false); TestGuest guest = new TestGuest(SIZE, 7, false)) {
            boolean[] resumedThere = new boolean[1];
            VmControl resuming = new ForwardingVm(target) {
                @Override
                public void resume() {
                    resumedThere[0] = true;
                    super.resume();
                }
            };
            try (IncomingMigration in = Migration.destination(resuming).memory(target.memory).start();
                 TcpProxy proxy = new TcpProxy(in.address())) {
                VmControl cutting = new ForwardingVm(guest) {
                    @Override
                    public void pause() {
                        super.pause();
                        // page channel 0's connection, as the source pauses for the switch
                        proxy.connections().get(1).close();
                    }
                };
                try (OutgoingMigration out = Migration.source(guest.memory, guest.dirty, cutting).parameters(postcopy)
                        .connect(proxy.address()).start()) {
                    MigrationReport report = out.await(Duration.ofSeconds(30));
                    MigrationReport received = in.await(Duration.ofSeconds(30));
                    boolean runsHere = report.sourceVmState() == SourceVmState.RUNNING;
                    boolean runsThere = resumedThere[0] && received.succeeded();
                    assertTrue(runsHere != runsThere, "the guest runs on exactly one side: source " + report.sourceVmState()
                            + " (" + report.error() + "), destination " + received.outcome() + " resumed " + resumedThere[0]
                            + " (" + received.error() + ")");
                }
            }
        }
    }

    /**
     * The same in a gang, whose guests share the connection cut: each guest runs on exactly one
     * side. Before the shared connection's loss reached each guest's handler on the destination,
     * the destination waited out its 10 s barrier while its source gave up recovering: the first
     * guest ran nowhere.
     */
    @RepeatedTest(3)
    void aSharedPageChannelLostAsTheSwitchBeginsLeavesEachGuestOnExactlyOneSide() throws Exception {
        MigrationParameters postcopy = MigrationParameters.builder().mode(dev.ferry.core.MigrationMode.POSTCOPY).channels(2)
                .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY)).recoverTimeoutMillis(3_000)
                .peerTimeoutMillis(2_000).build();
        Gang source = Gang.create();
        Gang destination = Gang.create();
        List<IncomingMigration> ins = new ArrayList<>();
        List<OutgoingMigration> outs = new ArrayList<>();
        boolean[] resumedThere = new boolean[2];
        try (Opened opened = new Opened()) {
            for (int member = 1; member <= 2; member++) {
                TestGuest target = opened.add(new TestGuest(SIZE, 0, false));
                int m = member - 1;
                VmControl resuming = new ForwardingVm(target) {
                    @Override
                    public void resume() {
                        resumedThere[m] = true;
                        super.resume();
                    }
                };
                ins.add(opened.add(Migration.destination(resuming).memory(target.memory).gang(destination, member).start()));
            }
            TcpProxy cut = opened.add(new TcpProxy(ins.getFirst().address()));
            AtomicBoolean once = new AtomicBoolean();
            for (int member = 1; member <= 2; member++) {
                TestGuest guest = opened.add(new TestGuest(SIZE, 7 + member, false));
                VmControl cutting = new ForwardingVm(guest) {
                    @Override
                    public void pause() {
                        super.pause();
                        if (once.compareAndSet(false, true)) {
                            cut.connections().get(1).close();
                        }
                    }
                };
                outs.add(opened.add(Migration.source(guest.memory, guest.dirty, cutting).parameters(postcopy)
                        .gang(source, member).connect(cut.address()).start()));
            }
            for (int m = 0; m < 2; m++) {
                MigrationReport report = outs.get(m).await(Duration.ofSeconds(30));
                MigrationReport received = ins.get(m).await(Duration.ofSeconds(30));
                boolean runsHere = report.sourceVmState() == SourceVmState.RUNNING;
                boolean runsThere = resumedThere[m] && received.succeeded();
                assertTrue(runsHere != runsThere, "member " + (m + 1) + " runs on exactly one side: source "
                        + report.sourceVmState() + " (" + report.error() + "), destination " + received.outcome()
                        + " resumed " + resumedThere[m] + " (" + received.error() + ")");
            }
        }
    }
}
