// The HDFS peer of bench/fs-mix: Hadoop's own MiniDFSCluster (one NameNode and N DataNodes in this JVM,
// real RPC and HTTP servers on loopback, real block files on disk), with WebHDFS on. No racks: given
// racks but no hosts, MiniDFSCluster names its DataNodes host1.foo.com, ..., and WebHDFS redirects
// clients to those names; with 3 DataNodes and replication 3 every block has a replica on each of them
// whatever the racks, so leaving racks out changes no placement. Prints one JSON line when it serves:
//   {"webhdfs":"http://localhost:PORT","user":"<superuser>","datanodes":N,"version":"3.4.1"}
// then runs until its stdin closes (the bench holds the pipe; if the bench dies the cluster stops too).
//
// Usage: java -cp CLASSPATH MiniHdfs BASE_DIR DATANODES
import java.io.File;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.DFSConfigKeys;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.util.VersionInfo;

public class MiniHdfs {
  public static void main(String[] args) throws Exception {
    File base = new File(args[0]);
    int datanodes = Integer.parseInt(args[1]);
    Configuration conf = new Configuration();
    conf.setBoolean("dfs.webhdfs.enabled", true);
    conf.set(DFSConfigKeys.DFS_NAMENODE_HTTP_ADDRESS_KEY, "127.0.0.1:0");
    conf.set("hadoop.security.authentication", "simple");
    conf.setInt(DFSConfigKeys.DFS_REPLICATION_KEY, Math.min(3, datanodes));
    MiniDFSCluster cluster =
        new MiniDFSCluster.Builder(conf, base)
            .numDataNodes(datanodes)
            .format(true)
            .build();
    cluster.waitActive();
    cluster.waitClusterUp();
    String http = cluster.getNameNode().getHttpAddress().getHostString() + ":"
        + cluster.getNameNode().getHttpAddress().getPort();
    String user = System.getProperty("user.name");
    System.out.println("{\"webhdfs\":\"http://" + http + "\",\"user\":\"" + user + "\",\"datanodes\":"
        + datanodes + ",\"version\":\"" + VersionInfo.getVersion() + "\"}");
    System.out.flush();
    // Wait for the bench to close our stdin (or die), then stop cleanly.
    while (System.in.read() != -1) {}
    cluster.shutdown(true);
    System.exit(0);
  }
}
