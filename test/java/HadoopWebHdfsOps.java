// Hadoop's own Java client (hadoop-client 3.4, unmodified) against hopsd over webhdfs://, as Spark,
// Hive and distcp reach a file system. Usage: java HadoopWebHdfsOps URI ROOT
// The caller is HADOOP_USER_NAME (a non-superuser); the quota steps run as the superuser `hopsd`.
// Prints "hadoop ok" when every step held; any failed step throws (exit 1).
import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.security.PrivilegedExceptionAction;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.BlockLocation;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileChecksum;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FsShell;
import org.apache.hadoop.fs.FsStatus;
import org.apache.hadoop.fs.LocatedFileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.QuotaUsage;
import org.apache.hadoop.fs.RemoteIterator;
import org.apache.hadoop.hdfs.protocol.DSQuotaExceededException;
import org.apache.hadoop.hdfs.protocol.NSQuotaExceededException;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.util.ToolRunner;

public class HadoopWebHdfsOps {
  static final int MIB = 1024 * 1024;
  static final long QUOTA_DONT_SET = Long.MAX_VALUE;

  static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
  }

  static byte[] bytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) out.write(p, 0, p.length);
    return out.toByteArray();
  }

  static byte[] read(FileSystem fs, Path p) throws Exception {
    try (InputStream in = fs.open(p)) {
      return in.readAllBytes();
    }
  }

  static void write(FileSystem fs, Path p, byte[] data, long blockSize) throws Exception {
    try (FSDataOutputStream out = fs.create(p, true, 65536, (short) 2, blockSize)) {
      out.write(data);
    }
  }

  /** Runs FsShell with `args`; returns its stdout (throws on a non-zero exit). */
  static String shell(Configuration conf, String... args) throws Exception {
    PrintStream saved = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    int rc;
    try (PrintStream ps = new PrintStream(captured, true, "UTF-8")) {
      System.setOut(ps);
      rc = ToolRunner.run(new FsShell(conf), args);
    } finally {
      System.setOut(saved);
    }
    String out = captured.toString("UTF-8");
    check(rc == 0, "FsShell " + String.join(" ", args) + " exited " + rc + ": " + out);
    return out;
  }

  public static void main(String[] argv) throws Exception {
    URI uri = URI.create(argv[0]);
    Path root = new Path(argv[1]);
    Configuration conf = new Configuration();
    conf.set("fs.defaultFS", uri.toString());
    conf.setBoolean("fs.webhdfs.impl.disable.cache", true);
    FileSystem fs = FileSystem.get(uri, conf);
    fs.mkdirs(root);

    // A file of 3.5 blocks; listFiles and listLocatedStatus need GETFILEBLOCKLOCATIONS.
    Path a = new Path(root, "a.bin");
    byte[] aData = bytes(3 * MIB + MIB / 2, 1);
    write(fs, a, aData, MIB);
    check(Arrays.equals(read(fs, a), aData), "a.bin reads back as written");
    RemoteIterator<LocatedFileStatus> it = fs.listFiles(root, true);
    LocatedFileStatus located = null;
    while (it.hasNext()) {
      LocatedFileStatus s = it.next();
      if (s.getPath().getName().equals("a.bin")) located = s;
    }
    check(located != null, "listFiles finds a.bin");
    BlockLocation[] blocks = located.getBlockLocations();
    check(blocks.length == 4, "a.bin has 4 block locations, got " + blocks.length);
    long offset = 0;
    for (BlockLocation b : blocks) {
      check(b.getOffset() == offset, "block offset " + b.getOffset() + " != " + offset);
      check(b.getHosts().length >= 1, "a block has a host");
      check(b.getHosts().length <= 2, "no more hosts than replicas");
      offset += b.getLength();
    }
    check(offset == aData.length, "block lengths add up to the file length");
    check(fs.getFileBlockLocations(a, MIB, 1).length == 1, "one block holds byte 1 MiB");
    RemoteIterator<LocatedFileStatus> ls = fs.listLocatedStatus(root);
    check(ls.hasNext() && ls.next().getBlockLocations().length >= 1, "listLocatedStatus has locations");

    // concat: two sources appended to the target, removed.
    Path t = new Path(root, "t.bin");
    Path s1 = new Path(root, "s1.bin");
    Path s2 = new Path(root, "s2.bin");
    byte[] tData = bytes(2 * MIB, 2);
    byte[] s1Data = bytes(MIB + 1000, 3);
    byte[] s2Data = bytes(MIB, 4);
    write(fs, t, tData, MIB);
    write(fs, s1, s1Data, MIB);
    write(fs, s2, s2Data, MIB);
    fs.concat(t, new Path[] {s1, s2});
    check(!fs.exists(s1) && !fs.exists(s2), "concat removes its sources");
    byte[] joined = concat(tData, s1Data, s2Data);
    check(Arrays.equals(read(fs, t), joined), "concat joins the bytes in order");

    // truncate: to a block boundary at once, then inside a block.
    check(fs.truncate(t, 3 * MIB), "truncate to a block boundary is done at once");
    check(fs.getFileStatus(t).getLen() == 3 * MIB, "length after truncate");
    boolean done = fs.truncate(t, 2 * MIB + 12345);
    for (int i = 0; !done && i < 600 && fs.getFileStatus(t).getLen() != 2 * MIB + 12345; i++) Thread.sleep(100);
    check(Arrays.equals(read(fs, t), Arrays.copyOf(joined, 2 * MIB + 12345)), "truncate inside a block keeps the prefix");

    // A non-recursive create under a missing parent: FileNotFoundException; nothing is made.
    try {
      fs.createNonRecursive(new Path(root, "missing/dir/f"), true, 4096, (short) 2, MIB, null).close();
      throw new AssertionError("createNonRecursive under a missing parent succeeded");
    } catch (FileNotFoundException expected) {
      // as HDFS
    }
    check(!fs.exists(new Path(root, "missing")), "no parent was made");

    // createFile(p) (overwrite(true) is its default): createflag=CREATE,OVERWRITE with createparent=false.
    Path o = new Path(root, "o.txt");
    try (FSDataOutputStream out = fs.createFile(o).build()) {
      out.write("first".getBytes("UTF-8"));
    }
    boolean refused = false;
    try {
      // WebHDFS sends the data (and learns the answer) when the stream closes.
      FSDataOutputStream out = fs.createFile(o).overwrite(false).build();
      out.write("third".getBytes("UTF-8"));
      out.close();
    } catch (FileAlreadyExistsException expected) {
      refused = true; // as HDFS
    }
    check(refused, "createFile().overwrite(false) refuses an existing file");
    try (FSDataOutputStream out = fs.createFile(o).overwrite(true).build()) {
      out.write("second".getBytes("UTF-8"));
    }
    check(new String(read(fs, o), "UTF-8").equals("second"), "createFile().overwrite(true) replaces");

    // An append in flight is bound to the file: a rename meanwhile keeps every byte.
    Path p = new Path(root, "append.bin");
    Path q = new Path(root, "renamed.bin");
    byte[] first = bytes(MIB + 7, 5);
    byte[] more = bytes(2 * MIB + 3, 6);
    write(fs, p, first, MIB);
    try (FSDataOutputStream out = fs.append(p)) {
      out.write(more, 0, MIB);
      out.hflush();
      check(fs.rename(p, q), "rename during the append");
      out.write(more, MIB, more.length - MIB);
    }
    check(Arrays.equals(read(fs, q), concat(first, more)), "the appended bytes follow the rename");
    List<BlockLocation> qBlocks = new ArrayList<>(Arrays.asList(fs.getFileBlockLocations(q, 0, Long.MAX_VALUE)));
    check(qBlocks.size() == 4, "an append continues the last partial block: 4 blocks, got " + qBlocks.size());

    // FsShell -df, -checksum, -truncate (HDFS's shell commands over webhdfs://).
    String df = shell(conf, "-df", root.toString());
    check(df.contains("Filesystem") && df.contains(uri.getHost()), "-df prints the file system: " + df);
    FsStatus st = fs.getStatus(root);
    check(st.getCapacity() > 0 && st.getRemaining() > 0, "GETSTATUS reports capacity");
    String sum = shell(conf, "-checksum", a.toString());
    FileChecksum ck = fs.getFileChecksum(a);
    check(sum.contains(ck.getAlgorithmName()), "-checksum prints the algorithm: " + sum);
    shell(conf, "-truncate", "-w", String.valueOf(MIB + 5), a.toString());
    check(Arrays.equals(read(fs, a), Arrays.copyOf(aData, MIB + 5)), "-truncate -w leaves the prefix");

    // Quotas: set by the superuser, enforced on this user's writes.
    Path qd = new Path(root, "quota");
    fs.mkdirs(qd);
    UserGroupInformation su = UserGroupInformation.createRemoteUser("hopsd");
    su.doAs(
        (PrivilegedExceptionAction<Void>)
            () -> {
              FileSystem sfs = FileSystem.get(uri, conf);
              sfs.setQuota(qd, 3, QUOTA_DONT_SET);
              sfs.setQuota(new Path(root, "quota"), QUOTA_DONT_SET, 3L * MIB);
              return null;
            });
    QuotaUsage qu = fs.getQuotaUsage(qd);
    check(qu.getQuota() == 3 && qu.getSpaceQuota() == 3L * MIB, "GETQUOTAUSAGE shows the quotas: " + qu);
    write(fs, new Path(qd, "one"), bytes(1000, 7), MIB);
    try {
      write(fs, new Path(qd, "big"), bytes(2 * MIB, 8), MIB);
      throw new AssertionError("a write past the space quota succeeded");
    } catch (DSQuotaExceededException expected) {
      // 2 MiB x 2 replicas > 3 MiB
    }
    check(!fs.exists(new Path(qd, "big")), "nothing half-written past the quota");
    write(fs, new Path(qd, "two"), bytes(10, 9), MIB);
    try {
      write(fs, new Path(qd, "three"), bytes(10, 10), MIB);
      throw new AssertionError("a name past the namespace quota was made");
    } catch (NSQuotaExceededException expected) {
      // the directory and two files are its 3 names
    }

    fs.delete(root, true);
    System.out.println("hadoop ok");
  }
}
