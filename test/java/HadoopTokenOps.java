// Hadoop's own WebHDFS client (webhdfs://) with a delegation token hopsd issued, as a job would get
// it: the URL string decoded by Token.decodeFromUrlString, put into the user's credentials, then a
// directory made, a file written, read back and listed — every request carrying only `delegation=`.
// Usage: HOST:PORT ROOT TOKEN_URL_STRING USER. Prints "hadoop token ok".
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.PrivilegedExceptionAction;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.security.token.Token;
import org.apache.hadoop.security.token.TokenIdentifier;

public class HadoopTokenOps {
  public static void main(String[] args) throws Exception {
    String hostPort = args[0];
    String root = args[1];
    Token<TokenIdentifier> token = new Token<>();
    token.decodeFromUrlString(args[2]);
    String user = args[3];
    if (!token.getKind().toString().equals("WEBHDFS delegation"))
      throw new AssertionError("kind " + token.getKind());
    // The identifier is Hadoop's delegation-token identifier: its owner is the user.
    TokenIdentifier id = token.decodeIdentifier();
    if (id != null && !id.getUser().getShortUserName().equals(user))
      throw new AssertionError("owner " + id.getUser());
    UserGroupInformation ugi = UserGroupInformation.createRemoteUser(user);
    ugi.addToken(token);
    ugi.doAs(
        (PrivilegedExceptionAction<Void>)
            () -> {
              Configuration conf = new Configuration();
              conf.setBoolean("fs.webhdfs.impl.disable.cache", true);
              FileSystem fs = FileSystem.get(new URI("webhdfs://" + hostPort), conf);
              Path dir = new Path(root);
              if (!fs.mkdirs(dir)) throw new AssertionError("mkdirs");
              Path file = new Path(dir, "a.txt");
              try (FSDataOutputStream out = fs.create(file, true)) {
                out.write("hello from hadoop".getBytes(StandardCharsets.UTF_8));
              }
              byte[] buf = new byte[64];
              int n;
              try (FSDataInputStream in = fs.open(file)) {
                n = in.read(buf);
              }
              String got = new String(buf, 0, n, StandardCharsets.UTF_8);
              if (!got.equals("hello from hadoop")) throw new AssertionError("read " + got);
              FileStatus[] list = fs.listStatus(dir);
              if (list.length != 1 || !list[0].getOwner().equals(user))
                throw new AssertionError("list " + list.length + " " + (list.length > 0 ? list[0].getOwner() : ""));
              fs.delete(dir, true);
              return null;
            });
    System.out.println("hadoop token ok");
  }
}
