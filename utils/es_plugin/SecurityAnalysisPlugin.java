package langchain.estest;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.FilteringTokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

/**
 * The analysis components that the {@code .security} index's "email" analyzer names
 * and that Elasticsearch's minimal build lacks (they live in its analysis-common
 * module, which that build does not ship): the {@code uax_url_email} tokenizer and
 * the {@code pattern_capture} and {@code unique} token filters. The core server
 * already has {@code lowercase}. Without them, creating an API key fails.
 *
 * <p>Each is a thin wrapper around a Lucene class in the distribution's lib/ and
 * takes the usual settings of its namesake. utils/es_server.py compiles this file
 * against the server's jars and installs it as a plugin of the cached server: bump
 * _PLUGIN_REVISION there whenever this file changes, so that caches rebuild it.
 */
public final class SecurityAnalysisPlugin extends Plugin implements AnalysisPlugin {

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Map.of("uax_url_email", (index, env, name, settings) -> {
            int maxTokenLength = settings.getAsInt("max_token_length", 255);
            return TokenizerFactory.newFactory(name, () -> {
                UAX29URLEmailTokenizer tokenizer = new UAX29URLEmailTokenizer();
                tokenizer.setMaxTokenLength(maxTokenLength);
                return tokenizer;
            });
        });
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        AnalysisProvider<TokenFilterFactory> patternCapture =
                (index, env, name, settings) -> patternCapture(name, settings);
        AnalysisProvider<TokenFilterFactory> unique =
                (index, env, name, settings) -> unique(name, settings);
        return Map.of(
                "pattern_capture", AnalysisPlugin.requiresAnalysisSettings(patternCapture),
                "unique", unique);
    }

    /** Emits each capture group of each pattern, and the token itself by default. */
    private static TokenFilterFactory patternCapture(String name, Settings settings) {
        List<String> regexes = settings.getAsList("patterns");
        if (regexes.isEmpty()) {
            throw new IllegalArgumentException(
                    "pattern_capture filter [" + name + "] needs [patterns]");
        }
        Pattern[] patterns = regexes.stream().map(Pattern::compile).toArray(Pattern[]::new);
        boolean keep = settings.getAsBoolean("preserve_original", true);
        return filter(name, in -> new PatternCaptureGroupTokenFilter(in, keep, patterns));
    }

    /** Drops repeated terms: anywhere in the stream, or only at one position. */
    private static TokenFilterFactory unique(String name, Settings settings) {
        if (settings.getAsBoolean("only_on_same_position", false)) {
            return filter(name, RemoveDuplicatesTokenFilter::new);
        }
        return filter(name, UniqueFilter::new);
    }

    private static TokenFilterFactory filter(String name, UnaryOperator<TokenStream> wrap) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream in) {
                return wrap.apply(in);
            }
        };
    }

    /** Keeps the first token of each term; skipped positions fold into the next. */
    private static final class UniqueFilter extends FilteringTokenFilter {
        private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
        private final CharArraySet seen = new CharArraySet(8, false);

        UniqueFilter(TokenStream in) {
            super(in);
        }

        @Override
        protected boolean accept() {
            if (seen.contains(term.buffer(), 0, term.length())) {
                return false;
            }
            seen.add(term.toString());
            return true;
        }

        @Override
        public void reset() throws IOException {
            super.reset();
            seen.clear();
        }
    }
}
